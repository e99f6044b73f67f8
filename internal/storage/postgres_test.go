package storage_test

import (
	"context"
	"fmt"
	"testing"

	"petrel/internal/journal"
	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

func openPostgres(t *testing.T, dsn string) *storage.Postgres {
	t.Helper()
	p, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: dsn, Table: backendtest.Name(t)})
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	return p
}

func TestPostgresConformance(t *testing.T) {
	srv := backendtest.StartPostgres(t)
	// Both ways of writing a batch: array statements in one round trip, and COPY.
	for _, rows := range []int{0, -1} {
		t.Run(fmt.Sprintf("PipelineRows=%d", rows), func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) storage.Backend {
				p, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{
					DSN: srv.DSN, Table: backendtest.Name(t), PipelineRows: rows,
				})
				if err != nil {
					t.Fatalf("OpenPostgres: %v", err)
				}
				return p
			})
		})
	}
}

// TestPostgresPGEnv checks that an empty DSN falls back to the standard
// PG* environment variables.
func TestPostgresPGEnv(t *testing.T) {
	srv := backendtest.StartPostgres(t)
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", fmt.Sprint(srv.Port))
	t.Setenv("PGUSER", "postgres")
	t.Setenv("PGDATABASE", "postgres")
	t.Setenv("PGSSLMODE", "disable")
	p := openPostgres(t, "")
	defer p.Close()
	if err := p.Apply(context.Background(), []journal.Record{backendtest.Set(1, "k", "v", 0, 0)}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	backendtest.Want(t, p, "k", "v", 0, 1)
}

// TestPostgresTombstonePurge checks that purged tombstones still keep older
// writes out, through the floor.
func TestPostgresTombstonePurge(t *testing.T) {
	srv := backendtest.StartPostgres(t)
	ctx := context.Background()
	p, err := storage.OpenPostgres(ctx, storage.PostgresOptions{DSN: srv.DSN, Table: backendtest.Name(t), TombstoneLag: 10})
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	defer p.Close()
	apply := func(recs ...journal.Record) {
		t.Helper()
		if err := p.Apply(ctx, recs); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	apply(backendtest.Set(1, "a", "1", 0, 0), backendtest.Delete(2, "a"), backendtest.Set(3, "b", "3", 0, 0))
	// Far enough ahead that the automatic purge runs below seq 30.
	apply(backendtest.Set(40, "c", "40", 0, 0))
	var n int
	if err := pgCount(ctx, srv.DSN, backendtest.Name(t), &n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d tombstones left after the purge, want 0", n)
	}
	apply(backendtest.Set(1, "a", "1", 0, 0)) // older than the purged tombstone
	backendtest.Want(t, p, "a", "", 0, 0)
	backendtest.Want(t, p, "b", "3", 0, 3)
	backendtest.Want(t, p, "c", "40", 0, 40)
}
