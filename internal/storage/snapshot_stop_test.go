package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"petrel/internal/journal"
)

// TestCatchUpStuckStoreStops: on a disk that takes no sstable (ENOSPC on
// creation, as a full disk), Pebble stalls the storer's Apply once its
// memtables are full, for ever. Asked to stop, CatchUp (what `petrel
// storer` and `snapshot create` run without a server) gives up after
// StoreStopTimeout with a STORE STUCK error instead of waiting with it;
// before, it waited for Run for ever and the command ignored SIGTERM.
func TestCatchUpStuckStoreStops(t *testing.T) {
	defer func(d time.Duration) { StoreStopTimeout = d }(StoreStopTimeout)
	StoreStopTimeout = 300 * time.Millisecond

	j := openTestJournal(t, t.TempDir(), 1<<20)
	defer j.Close()
	value := bytes.Repeat([]byte("v"), 4<<10)
	for i := range 2000 { // 8 MiB: several 1 MiB memtables
		r := journal.Record{Type: journal.TypeSet, Key: fmt.Appendf(nil, "k%d", i), Value: value}
		if _, err := j.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.WaitDurable(j.LastSeq()); err != nil {
		t.Fatal(err)
	}

	var fail atomic.Bool
	fail.Store(true)
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			return fmt.Errorf("create %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})
	// No test logger: Pebble goes on logging after the test returns.
	p, err := OpenPebble(t.TempDir(), PebbleOptions{CacheBytes: 1 << 20, MemTableBytes: 1 << 20,
		FS: errorfs.Wrap(vfs.Default, inj)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Let the stalled Apply and the storer's last flush through, then
		// close the store once the storer is done with it.
		fail.Store(false)
		deadline := time.Now().Add(time.Minute)
		for applied, _ := p.AppliedSeq(context.Background()); p.DurableAppliedSeq() < applied; applied, _ = p.AppliedSeq(context.Background()) {
			if time.Now().After(deadline) {
				t.Fatal("the storer never finished once the disk worked again")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- CatchUp(ctx, j, p, StorerOptions{CPUShare: 1, FlushBytes: 1 << 30, FlushInterval: time.Hour}, nil)
	}()
	// Wait for the stall: applied stops moving short of the end.
	var last uint64
	for still := 0; still < 5; {
		time.Sleep(100 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("CatchUp returned %v; the store did not stall", err)
		default:
		}
		applied, _ := p.AppliedSeq(ctx)
		if applied == last {
			still++
		} else {
			still, last = 0, applied
		}
	}
	if last >= j.LastSeq() {
		t.Fatalf("applied %d of %d: no stall", last, j.LastSeq())
	}
	t.Logf("stalled at applied %d of %d", last, j.LastSeq())
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStoreStuck) || !strings.Contains(err.Error(), "STORE STUCK: could not stop the storer") {
			t.Errorf("CatchUp on a stuck store = %v, want STORE STUCK", err)
		}
		if d := time.Since(start); d > 10*StoreStopTimeout {
			t.Errorf("CatchUp took %v to give up, want about %v", d, StoreStopTimeout)
		}
	case <-time.After(time.Minute):
		t.Fatal("CatchUp did not return after cancellation")
	}
}
