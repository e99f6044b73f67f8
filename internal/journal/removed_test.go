package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemovedJournal removes the journal (its directory, or the active
// segment) under an open journal: the next group must not be acknowledged,
// nor any later one, and the journal must not resume, in either mode, and
// also when the next group starts a new segment in a directory made again.
func TestRemovedJournal(t *testing.T) {
	f := func(name string, mode Mode, mem, roll bool, remove func(fs *memFS, dir string) error) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "journal")
		opts := Options{Dir: dir, Mode: mode}
		var mfs *memFS
		if mem {
			mfs = newMemFS()
			opts.FS = mfs
		}
		if roll {
			opts.SegmentSize = 512 // the big record below starts a new segment
		}
		j := openT(t, opts)
		appendN(t, j, 3)
		if err := remove(mfs, dir); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := Record{Type: TypeSet, Key: []byte("after"), Value: make([]byte, 400)}
		seq, err := j.Append(&r)
		if err == nil {
			err = j.WaitDurable(seq)
		}
		if !errors.Is(err, ErrRemoved) || !errors.Is(err, ErrFailed) {
			t.Errorf("%s: a write after the removal: %v; want it refused with ErrRemoved", name, err)
		}
		if d := j.DurableSeq(); d != 3 {
			t.Errorf("%s: durable sequence %d after the removal, want 3", name, d)
		}
		r = testRecord(5)
		if _, err := j.Append(&r); !errors.Is(err, ErrFailed) {
			t.Errorf("%s: a later append: %v; want ErrFailed", name, err)
		}
		if !j.Stats().Failed || !errors.Is(j.Err(), ErrRemoved) {
			t.Errorf("%s: failed %v, Err() = %v", name, j.Stats().Failed, j.Err())
		}
		if err := j.Resume(); err == nil || !strings.Contains(err.Error(), "cannot resume") {
			t.Errorf("%s: Resume after the removal: %v; want a refusal", name, err)
		}
		if err := j.Close(); !errors.Is(err, ErrRemoved) {
			t.Errorf("%s: Close: %v", name, err)
		}
	}
	removeDir := func(_ *memFS, dir string) error { return os.RemoveAll(dir) }
	remakeDir := func(_ *memFS, dir string) error {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return os.Mkdir(dir, 0o755)
	}
	removeSegment := func(_ *memFS, dir string) error { return os.Remove(filepath.Join(dir, segName(1))) }
	removeMem := func(fs *memFS, dir string) error { fs.removeAll(dir); return nil }

	f("sync, directory removed", ModeSync, false, false, removeDir)
	f("async, directory removed", ModeAsync, false, false, removeDir)
	f("sync, segment removed", ModeSync, false, false, removeSegment)
	f("sync, directory made again, roll", ModeSync, false, true, remakeDir)
	f("async, directory made again, roll", ModeAsync, false, true, remakeDir)
	f("memfs sync", ModeSync, true, false, removeMem)
	f("memfs async, roll", ModeAsync, true, true, removeMem)
}

// TestRemovedJournalAsyncSync: async mode's periodic sync notices a
// removal with no write to meet it.
func TestRemovedJournalAsyncSync(t *testing.T) {
	dir := t.TempDir()
	// The first group syncs (none has yet), the next ones wait for a
	// periodic sync that the test runs itself.
	j := openT(t, Options{Dir: dir, Mode: ModeAsync, SyncInterval: time.Hour})
	defer j.Close()
	appendN(t, j, 3)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	j.syncAsync()
	if err := j.Err(); !errors.Is(err, ErrRemoved) {
		t.Fatalf("Err() after the periodic sync of a removed journal: %v", err)
	}
}

// TestRestart starts a journal again after what its consumer holds: only
// with Repair, only forward, and durably, so that a reopen continues there.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir})
	appendN(t, j, 5)
	if err := j.Restart(20, "test"); !errors.Is(err, ErrNeedsRepair) {
		t.Fatalf("Restart without Repair: %v", err)
	}
	j.Close()

	var logged []string
	logf := func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	j = openT(t, Options{Dir: dir, Repair: true, Logf: logf})
	if err := j.Restart(3, "test"); err == nil {
		t.Fatal("Restart below the sequences handed out succeeded")
	}
	if err := j.Restart(20, "the store holds up to 19"); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	rec := j.Recovery()
	if rec.FirstSeq != 20 || rec.LastSeq != 19 || j.DurableSeq() != 19 || len(rec.Dropped) != 1 {
		t.Errorf("after Restart(20): recovery %+v, durable %d", rec, j.DurableSeq())
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "JOURNAL RESTARTED at sequence 20: the store holds up to 19") ||
		!strings.Contains(logged[0], "records 1..5") {
		t.Errorf("logged %q", logged)
	}
	appendN(t, j, 3)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = openT(t, Options{Dir: dir})
	defer j.Close()
	if rec := j.Recovery(); rec.FirstSeq != 20 || rec.LastSeq != 22 || rec.Segments != 1 {
		t.Errorf("reopened after Restart: %+v", rec)
	}
	if last, err := readChecked(j, 0); err != nil || last != 22 {
		t.Errorf("reading after Restart: %d, %v", last, err)
	}
}

// TestRestartEmpty restarts the empty journal that Open makes where the
// journal was removed.
func TestRestartEmpty(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, Repair: true})
	defer j.Close()
	if err := j.Restart(100, "test"); err != nil {
		t.Fatal(err)
	}
	if w := j.Recovery().Warnings; len(w) != 1 || !strings.Contains(w[0], "holding no records") {
		t.Errorf("warnings %q", w)
	}
	appendN(t, j, 2)
	if names, _ := (OSFS{}).List(dir); len(names) != 1 || names[0] != segName(100) {
		t.Errorf("files after Restart: %q", names)
	}
}
