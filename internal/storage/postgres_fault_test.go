package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/internal/journal"
	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

// pgCount counts the tombstones left in table.
func pgCount(ctx context.Context, dsn, table string, n *int) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(ctx)
	q := "SELECT count(*) FROM " + pgx.Identifier{table}.Sanitize() + " WHERE tombstone"
	if err := c.QueryRow(ctx, q).Scan(n); err != nil {
		return fmt.Errorf("count tombstones: %w", err)
	}
	return nil
}

// faultLoad applies batches of sets and deletes over a few keys in order,
// retrying a failed batch the way the storer does, and calls outage once
// after the first third. It returns how many Apply calls failed, and the
// last record of each key.
func faultLoad(t *testing.T, b storage.Backend, outage func(failures *atomic.Int64)) (int64, map[string]journal.Record) {
	t.Helper()
	const (
		total = 3000
		batch = 50
		keys  = 20
	)
	last := map[string]journal.Record{}
	var recs []journal.Record
	for i := range total {
		seq := uint64(i + 1)
		key := fmt.Sprintf("key%d", i*7%keys)
		r := backendtest.Set(seq, key, fmt.Sprintf("value-%d", seq), uint32(i), 0)
		if i%9 == 0 {
			r = backendtest.Delete(seq, key)
		}
		recs = append(recs, r)
		last[key] = r
	}
	var failures atomic.Int64
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	outageDone := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i += batch {
			if i == total/3 {
				go func() {
					defer close(outageDone)
					outage(&failures)
				}()
				// Keep re-applying this batch (Apply is idempotent) until
				// the outage shows, so the load cannot finish before the
				// backend goes down.
				for failures.Load() == 0 && ctx.Err() == nil {
					actx, acancel := context.WithTimeout(ctx, 5*time.Second)
					if b.Apply(actx, recs[i:min(i+batch, total)]) != nil {
						failures.Add(1)
					}
					acancel()
					time.Sleep(5 * time.Millisecond)
				}
			}
			for {
				actx, acancel := context.WithTimeout(ctx, 5*time.Second)
				err := b.Apply(actx, recs[i:min(i+batch, total)])
				acancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Errorf("load gave up at seq %d: %v", i+1, err)
					return
				}
				failures.Add(1)
				// The storer's retry metric needs a kind; an outage is
				// not a generic error.
				var k storage.ErrorKinder
				if !errors.As(err, &k) || (k.ErrorKind() != "unavailable" && k.ErrorKind() != "timeout") {
					t.Errorf("Apply during the outage: %v: kind %v, want unavailable or timeout", err, k)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	<-done
	<-outageDone
	return failures.Load(), last
}

// checkConverged checks that b holds exactly the last record of each key.
func checkConverged(t *testing.T, b storage.Backend, last map[string]journal.Record, applied uint64) {
	t.Helper()
	for key, r := range last {
		if r.Type == journal.TypeDelete {
			backendtest.Want(t, b, key, "", 0, 0)
		} else {
			backendtest.Want(t, b, key, string(r.Value), r.Flags, r.Seq)
		}
	}
	got, err := b.AppliedSeq(context.Background())
	if err != nil || got != applied {
		t.Fatalf("AppliedSeq = %d, %v; want %d", got, err, applied)
	}
}

// TestPostgresOutage stops PostgreSQL in the middle of a load: Apply fails
// while it is down, and once it is back the table converges to exactly the
// last write of every key.
func TestPostgresOutage(t *testing.T) {
	srv := backendtest.StartPostgres(t)
	p := openPostgres(t, srv.DSN)
	defer p.Close()
	failures, last := faultLoad(t, p, func(failures *atomic.Int64) {
		srv.Stop()
		for failures.Load() < 3 {
			time.Sleep(10 * time.Millisecond)
		}
		srv.Start()
	})
	if failures < 3 {
		t.Fatalf("%d failed Applies during the outage, want at least 3", failures)
	}
	checkConverged(t, p, last, 3000)
	// A fresh connection sees the same.
	p.Close()
	p = openPostgres(t, srv.DSN)
	checkConverged(t, p, last, 3000)
}
