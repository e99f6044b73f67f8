package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitProgress polls dataDir's published progress until ok accepts it.
func waitProgress(t *testing.T, dataDir, what string, ok func(StorerProgress) bool) StorerProgress {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, found, err := ReadStorerProgress(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if found && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: published %+v (found: %v)", what, p, found)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPublishProgress: a storer following a server's journal publishes the
// sequence it has applied and its place in the journal, from which the
// server's own journal measures the backlog exactly, with the backend up,
// down, and after the storer has stopped.
func TestPublishProgress(t *testing.T) {
	f := startFollowedStorer(t, 6, 100)
	dataDir, j, s, down, applied, stopStorer := f.dataDir, f.j, f.s, f.down, f.applied, f.stop
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); PublishProgress(ctx, dataDir, s, time.Millisecond, t.Logf) }()
	defer func() { cancel(); <-done }()

	got := waitProgress(t, dataDir, "caught up", func(p StorerProgress) bool { return p.Applied == applied })
	if n := j.BytesAfter(got.Pos); n != 0 {
		t.Errorf("caught up at %d: %d bytes after %+v", applied, n, got.Pos)
	}
	down.Store(true)
	last := appendValues(t, j, "down", 20, 3000)
	got = waitProgress(t, dataDir, "backend down", func(StorerProgress) bool {
		return s.Lag().Stats.Retries["error"] > 0
	})
	if want := journalBytesFrom(t, j, applied+1); got.Applied != applied || j.BytesAfter(got.Pos) != want {
		t.Errorf("backend down: published applied %d, %d bytes after it; want %d, %d bytes", got.Applied, j.BytesAfter(got.Pos), applied, want)
	}
	down.Store(false)
	got = waitProgress(t, dataDir, "caught up again", func(p StorerProgress) bool { return p.Applied == last })
	if n := j.BytesAfter(got.Pos); n != 0 {
		t.Errorf("caught up at %d: %d bytes after %+v", last, n, got.Pos)
	}
	// A storer that stopped leaves its progress: the backlog measured
	// from it grows with the writes nobody applies.
	if err := stopStorer(); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	later := appendValues(t, j, "stopped", 5, 3000)
	got = waitProgress(t, dataDir, "stopped", func(StorerProgress) bool { return true })
	if want := journalBytesFrom(t, j, last+1); got.Applied != last || j.BytesAfter(got.Pos) != want || later <= last {
		t.Errorf("storer stopped: published applied %d, %d bytes after it; want %d, %d bytes", got.Applied, j.BytesAfter(got.Pos), last, want)
	}
}

func TestReadStorerProgress(t *testing.T) {
	dir := t.TempDir()
	f := func(body string, wantOK bool, wantErr string) {
		t.Helper()
		path := filepath.Join(dir, progressFile)
		os.Remove(path)
		if body != "" {
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, ok, err := ReadStorerProgress(dir)
		if ok != wantOK || (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%q: ok %v, err %v; want %v, %q", body, ok, err, wantOK, wantErr)
		}
	}
	f("", false, "")
	f("petrel-storer-progress/1 7 1 24\n", true, "")
	f("7\n", false, "is not petrel-storer-progress/1")
	f("petrel-storer-progress/2 7 1 24\n", false, "is not petrel-storer-progress/1")
	f("petrel-storer-progress/1 7 1\n", false, "is not petrel-storer-progress/1")
}
