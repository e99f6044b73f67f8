package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fillDataDir writes records to dataDir's journal and applies part of
// them to its Pebble, as a server that stopped would leave it.
func fillDataDir(t *testing.T, dataDir string, seed uint64) *writer {
	t.Helper()
	j := openTestJournal(t, JournalDir(dataDir), 8<<10)
	w := newWriter(t, j, seed)
	p := openTestPebble(t, PebbleDir(dataDir))
	last := w.write(400)
	if err := CatchUp(context.Background(), j, p, StorerOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	w.write(300) // left in the journal only
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if last == 0 {
		t.Fatal("nothing written")
	}
	return w
}

// openDataDir opens a data directory as the server would and applies its
// journal, returning the contents.
func restoredContents(t *testing.T, dataDir string) (map[string]string, uint64) {
	t.Helper()
	j := openTestJournal(t, JournalDir(dataDir), 8<<10)
	defer j.Close()
	p := openTestPebble(t, PebbleDir(dataDir))
	defer p.Close()
	if err := CatchUp(context.Background(), j, p, StorerOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range contents(t, p, testNow) {
		got[k] = v
	}
	return got, j.DurableSeq()
}

func TestSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	dataDir, snap := t.TempDir(), filepath.Join(t.TempDir(), "snap")
	w := fillDataDir(t, dataDir, 5)
	m, err := CreateSnapshot(ctx, dataDir, snap, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if m.AppliedSeq != w.last || m.Items != int64(len(w.model)) {
		t.Errorf("manifest: applied %d, %d items; want %d, %d", m.AppliedSeq, m.Items, w.last, len(w.model))
	}
	if _, err := VerifySnapshot(ctx, snap, t.Logf); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "restored")
	if err := RestoreSnapshot(ctx, snap, target, false, t.Logf); err != nil {
		t.Fatal(err)
	}
	got, next := restoredContents(t, target)
	if fmt.Sprint(got) != fmt.Sprint(w.model) {
		t.Errorf("restored contents differ:\n got %v\nwant %v", got, w.model)
	}
	if next < w.last {
		t.Errorf("restored journal ends at %d, below the snapshot's %d", next, w.last)
	}
	// A non-empty target is refused without force, replaced with it.
	if err := RestoreSnapshot(ctx, snap, target, false, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore over a data directory = %v, want a refusal", err)
	}
	if err := RestoreSnapshot(ctx, snap, target, true, nil); err != nil {
		t.Errorf("restore --force: %v", err)
	}
	// New writes after a restore get sequences above the snapshot's.
	j := openTestJournal(t, JournalDir(target), 0)
	w.j = j
	if seq := w.write(1); seq <= m.AppliedSeq {
		t.Errorf("first write after restore got sequence %d, want above %d", seq, m.AppliedSeq)
	}
	j.Close()
}

// With a server holding the journal, the snapshot carries the unapplied
// records, and a restore replays them.
func TestSnapshotCarriesUnappliedJournal(t *testing.T) {
	ctx := context.Background()
	dataDir, snap := t.TempDir(), filepath.Join(t.TempDir(), "snap")
	w := fillDataDir(t, dataDir, 6)
	lock, err := LockJournal(dataDir) // a running server
	if err != nil {
		t.Fatal(err)
	}
	m, err := CreateSnapshot(ctx, dataDir, snap, t.Logf)
	lock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if m.AppliedSeq >= w.last || m.JournalLast != w.last || m.JournalFirst > m.AppliedSeq+1 {
		t.Errorf("manifest: applied %d, journal %d..%d; want unapplied records up to %d", m.AppliedSeq, m.JournalFirst, m.JournalLast, w.last)
	}
	target := t.TempDir()
	if err := RestoreSnapshot(ctx, snap, target, false, t.Logf); err != nil {
		t.Fatal(err)
	}
	if got, _ := restoredContents(t, target); fmt.Sprint(got) != fmt.Sprint(w.model) {
		t.Errorf("restored contents differ:\n got %v\nwant %v", got, w.model)
	}
}

func TestSnapshotVerifyDetectsDamage(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	fillDataDir(t, dataDir, 7)
	f := func(name string, damage func(snap string) error, want string) {
		t.Helper()
		snap := filepath.Join(t.TempDir(), "snap")
		if _, err := CreateSnapshot(ctx, dataDir, snap, nil); err != nil {
			t.Fatal(err)
		}
		if err := damage(snap); err != nil {
			t.Fatal(err)
		}
		_, err := VerifySnapshot(ctx, snap, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: verify = %v, want an error containing %q", name, err, want)
		}
		if err := RestoreSnapshot(ctx, snap, t.TempDir(), false, nil); err == nil {
			t.Errorf("%s: restore of a damaged snapshot succeeded", name)
		}
	}
	flip := func(pick func(path string) bool) func(string) error {
		return func(snap string) error {
			var target string
			filepath.Walk(snap, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() && fi.Size() > 100 && target == "" && pick(p) {
					target = p
				}
				return nil
			})
			if target == "" {
				return fmt.Errorf("no file to damage")
			}
			b, err := os.ReadFile(target)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x10
			// A new file, not a write in place: the checkpoint's sstables
			// are hard links to the data directory's.
			if err := os.WriteFile(target+".tmp", b, 0o644); err != nil {
				return err
			}
			return os.Rename(target+".tmp", target)
		}
	}
	f("flipped byte in an sstable", flip(func(p string) bool { return strings.HasSuffix(p, ".sst") }), "checksum mismatch")
	f("flipped byte in the journal", flip(func(p string) bool { return strings.HasSuffix(p, ".journal") }), "checksum mismatch")
	f("flipped byte in the manifest", flip(func(p string) bool { return strings.HasSuffix(p, manifestName) }), "manifest")
	f("missing file", func(snap string) error {
		m, _ := filepath.Glob(filepath.Join(snap, "pebble", "*.sst"))
		return os.Remove(m[0])
	}, "missing")
	f("extra file", func(snap string) error {
		return os.WriteFile(filepath.Join(snap, "pebble", "extra"), []byte("x"), 0o644)
	}, "not in the manifest")
}

// A running server can snapshot itself: the storer and the journal writer
// keep going while WriteSnapshot runs, and the result verifies and
// restores to a state that holds every write up to its journal's end.
func TestWriteSnapshotOnline(t *testing.T) {
	ctx := context.Background()
	dataDir, snap := t.TempDir(), filepath.Join(t.TempDir(), "snap")
	j := openTestJournal(t, JournalDir(dataDir), 8<<10)
	defer j.Close()
	p := openTestPebble(t, PebbleDir(dataDir))
	defer p.Close()
	s := NewStorer(j, p, StorerOptions{FlushBytes: 4 << 10})
	startStorer(t, s)
	w := newWriter(t, j, 8)
	w.write(500)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			w.write(100)
		}
	}()
	m, err := WriteSnapshot(ctx, p, JournalDir(dataDir), snap, t.Logf)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySnapshot(ctx, snap, t.Logf); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := RestoreSnapshot(ctx, snap, target, false, nil); err != nil {
		t.Fatal(err)
	}
	got, last := restoredContents(t, target)
	if last != m.JournalLast || last < 500 {
		t.Errorf("restored journal ends at %d, manifest says %d", last, m.JournalLast)
	}
	// Replay the writer's history up to last for the expected state.
	replay := newWriter(t, openTestJournal(t, t.TempDir(), 0), 8)
	defer replay.j.Close()
	replay.write(int(last))
	if fmt.Sprint(got) != fmt.Sprint(replay.model) {
		t.Errorf("restored state differs from the writes up to %d:\n got %v\nwant %v", last, got, replay.model)
	}
}

// TestSnapshotCreateFailureCleansUp: a create stopped partway (a cancelled
// ctx, as SIGINT gives; it fails in the journal copy, after the checkpoint)
// removes the output directory it made, parents included, and empties one
// that existed, instead of leaving a partial snapshot that verify rejects
// and a second create refuses. A directory with other content is refused
// and left alone.
func TestSnapshotCreateFailureCleansUp(t *testing.T) {
	dataDir := t.TempDir()
	fillDataDir(t, dataDir, 9)
	lock, err := LockJournal(dataDir) // a running server: no catch-up first
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	stopped, stop := context.WithCancel(context.Background())
	stop()
	f := func(name, out string, before []string, wantErr string, want []string) {
		t.Helper()
		for _, p := range before {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(p, "/") {
				continue
			}
			if err := os.WriteFile(p, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := CreateSnapshot(stopped, dataDir, out, nil)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: create = %v, want an error containing %q", name, err, wantErr)
		}
		var got []string
		filepath.WalkDir(want[0], func(p string, d os.DirEntry, err error) error {
			if err == nil {
				got = append(got, p)
			}
			return nil
		})
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: left %v, want %v", name, got, want)
		}
	}
	d := t.TempDir()
	f("missing", d+"/a/snap", []string{d + "/a/"}, "context canceled; removed the partial snapshot "+d+"/a/snap",
		[]string{d, d + "/a"})
	d = t.TempDir()
	f("missing, parents too", d+"/a/b/snap", nil, "; removed the partial snapshot "+d+"/a/b/snap",
		[]string{d})
	d = t.TempDir()
	f("existed, empty", d+"/a/snap", []string{d + "/a/snap/"}, "; removed the partial snapshot from "+d+"/a/snap, which existed before",
		[]string{d, d + "/a", d + "/a/snap"})
	d = t.TempDir()
	f("existed, not empty", d+"/a/snap", []string{d + "/a/snap/keep"}, d+"/a/snap is not empty",
		[]string{d, d + "/a", d + "/a/snap", d + "/a/snap/keep"})

	// Nothing is left in the way of the next create.
	out := filepath.Join(t.TempDir(), "snap")
	if _, err := CreateSnapshot(stopped, dataDir, out, nil); err == nil {
		t.Fatal("create with a cancelled ctx succeeded")
	}
	if _, err := CreateSnapshot(context.Background(), dataDir, out, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySnapshot(context.Background(), out, nil); err != nil {
		t.Fatal(err)
	}
}
