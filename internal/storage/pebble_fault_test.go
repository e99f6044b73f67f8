package storage

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// failingSSTs opens Pebble on a file system whose sstable creation fails
// with ENOSPC while *fail is set: a full disk, as a flush meets it.
func failingSSTs(t *testing.T, dir string, fail *atomic.Bool, attempts *atomic.Int64) *Pebble {
	t.Helper()
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			attempts.Add(1)
			return fmt.Errorf("create %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})
	p, err := OpenPebble(dir, PebbleOptions{
		Now: func() int64 { return testNow }, CacheBytes: 1 << 20, MemTableBytes: 1 << 20,
		FS: errorfs.Wrap(vfs.Default, inj), Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// flushWithin runs Flush and fails the test if it has not returned after d:
// on a failing disk, Pebble's own DB.Flush never does.
func flushWithin(t *testing.T, p *Pebble, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Flush() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Flush did not return within %v", d)
		return nil
	}
}

// TestPebbleFlushOnFullDisk: while sstables cannot be written, Flush
// returns the error instead of hanging, DurableAppliedSeq stays put (so the
// journal is not truncated), and Pebble's retries back off rather than
// spin. Once the disk works again, the next Flush succeeds and the data
// survives a reopen.
func TestPebbleFlushOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	var attempts atomic.Int64
	p := failingSSTs(t, dir, &fail, &attempts)
	mustApply(t, p, set(1, "a", "1"), set(2, "b", "2"))
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, p, set(3, "c", "3"), del(4, "a"))

	fail.Store(true)
	err := flushWithin(t, p, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("Flush on a full disk: %v, want the ENOSPC", err)
	}
	if got := p.DurableAppliedSeq(); got != 2 {
		t.Errorf("DurableAppliedSeq after a failed flush = %d, want 2", got)
	}
	// Without the backoff Pebble retries thousands of times a second;
	// with it, a handful (pauses grow to 500 ms).
	time.Sleep(time.Second)
	before := attempts.Load()
	time.Sleep(2 * time.Second)
	if n := attempts.Load() - before; n > 40 {
		t.Errorf("%d flush attempts in 2 s on a full disk: the retries do not back off", n)
	}
	// A second Flush waits for the same flush, not a new one: each
	// AsyncFlush would queue another memtable.
	memtables := p.db.Metrics().MemTable.Count
	if err := flushWithin(t, p, time.Minute); err == nil {
		t.Fatal("Flush on a still-full disk succeeded")
	}
	if n := p.db.Metrics().MemTable.Count; n != memtables {
		t.Errorf("a second Flush on a full disk took the memtables from %d to %d: it asked for a new flush", memtables, n)
	}

	fail.Store(false)
	if err := flushWithin(t, p, time.Minute); err != nil {
		t.Fatalf("Flush once the disk has room: %v", err)
	}
	if got := p.DurableAppliedSeq(); got != 4 {
		t.Errorf("DurableAppliedSeq after the flush = %d, want 4", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPebble(t, dir)
	defer p.Close()
	if got, _ := p.AppliedSeq(context.Background()); got != 4 {
		t.Errorf("AppliedSeq after reopening = %d, want 4", got)
	}
	if got := contents(t, p, testNow); len(got) != 2 || got["b"] != "2@2" || got["c"] != "3@3" {
		t.Errorf("contents after reopening = %v", got)
	}
}

// TestPebbleCloseOnFullDisk: Close on a disk that cannot take the final
// flush returns its error rather than hanging. What was not flushed is
// gone from the store, and the store says so: it reopens at the last
// flushed sequence, from which the journal replays.
func TestPebbleCloseOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	var attempts atomic.Int64
	p := failingSSTs(t, dir, &fail, &attempts)
	mustApply(t, p, set(1, "a", "1"))
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, p, set(2, "b", "2"))
	fail.Store(true)
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Close on a full disk reported no error")
		}
		t.Logf("Close on a full disk: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("Close did not return within a minute on a full disk")
	}
	p = openTestPebble(t, dir)
	defer p.Close()
	if got, _ := p.AppliedSeq(context.Background()); got != 1 {
		t.Errorf("AppliedSeq after reopening = %d, want 1 (the flushed part)", got)
	}
	if got := contents(t, p, testNow); len(got) != 1 || got["a"] != "1@1" {
		t.Errorf("contents after reopening = %v", got)
	}
}

// TestPebbleFatalGoesToOnFatal: a MANIFEST write that fails (a disk full
// to the last block: the sstable fitted, the MANIFEST edit did not) is
// fatal to Pebble; it reaches OnFatal with the cause, for the server to
// exit with a sentence instead of a panic's page of goroutines.
func TestPebbleFatalGoesToOnFatal(t *testing.T) {
	var fail atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileSync) &&
			strings.Contains(op.Path, "MANIFEST") {
			return fmt.Errorf("write %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})
	fatal := make(chan string, 1)
	p, err := OpenPebble(t.TempDir(), PebbleOptions{
		Now: func() int64 { return testNow }, CacheBytes: 1 << 20, MemTableBytes: 1 << 20,
		FS: errorfs.Wrap(vfs.Default, inj), Logf: t.Logf,
		OnFatal: func(msg string) {
			fatal <- msg
			select {} // must not return; the test leaves this Pebble behind
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, p, set(1, "a", "1"))
	fail.Store(true)
	go func() { _ = p.Flush() }() // never returns: OnFatal holds the flush
	select {
	case msg := <-fatal:
		if !strings.Contains(msg, "no space left") {
			t.Errorf("OnFatal(%q): the cause is missing", msg)
		}
	case <-time.After(time.Minute):
		t.Fatal("a failed MANIFEST write did not reach OnFatal")
	}
}
