package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"petrel/internal/journal"
)

// switchBackend is a backend whose Apply fails while down is set (a
// database that went away); AppliedSeq still answers.
func switchBackend(b Backend, down *atomic.Bool) *flakyBackend {
	return &flakyBackend{Backend: b, failing: func(int) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}}
}

// journalBytesFrom is the size on disk of j's records from seq on, read
// back (group-end trailers included).
func journalBytesFrom(t *testing.T, j journal.Journal, seq uint64) int64 {
	t.Helper()
	r, err := j.ReadFrom(seq)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var n int64
	var rec journal.Record
	for {
		err := r.Next(&rec)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n += int64(journal.EncodedLen(&rec))
	}
}

// appendValues appends n sets of size-byte values, waiting for each (one
// group each, so that segments roll between them), and returns the last
// sequence.
func appendValues(t *testing.T, j journal.Journal, prefix string, n, size int) uint64 {
	t.Helper()
	var seq uint64
	for i := range n {
		r := journal.Record{Type: journal.TypeSet, Key: fmt.Appendf(nil, "%s-%d", prefix, i), Value: []byte(strings.Repeat("v", size))}
		var err error
		if seq, err = j.Append(&r); err != nil {
			t.Fatal(err)
		}
		if err := j.WaitDurable(seq); err != nil {
			t.Fatal(err)
		}
	}
	return seq
}

// waitLag polls s.Lag until ok accepts it, and returns it.
func waitLag(t *testing.T, s *Storer, what string, ok func(Lag) bool) Lag {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := s.Lag()
		if ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %+v", what, l)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStorerBacklogBytesLargeValues: large values written while the
// backend is down are counted at their size. The estimate this replaced
// (records behind × the average applied record) counted 40 values of
// 500 KB written after small ones as a few kilobytes.
func TestStorerBacklogBytesLargeValues(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, filepath.Join(dir, "journal"), 4<<20)
	defer j.Close()
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	defer p.Close()
	var down atomic.Bool
	s := NewStorer(j, switchBackend(p, &down), StorerOptions{RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, CPUShare: 1})
	stop := startStorer(t, s)
	applied := newWriter(t, j, 1).write(200) // small records, applied
	if err := s.WaitApplied(context.Background(), applied); err != nil {
		t.Fatal(err)
	}
	if l := s.Lag(); l.BacklogBytes != 0 {
		t.Fatalf("caught up: %d bytes of backlog", l.BacklogBytes)
	}
	down.Store(true)
	last := appendValues(t, j, "big", 40, 500<<10)
	want := journalBytesFrom(t, j, applied+1)
	if want < 40*500<<10 || j.Stats().Segments < 3 {
		t.Fatalf("%d bytes in %d segments: the test needs 20 MB across segments", want, j.Stats().Segments)
	}
	l := waitLag(t, s, "backlog of 40 large values", func(l Lag) bool { return l.Stats.Retries["error"] > 0 })
	if l.AppliedSeq != applied || l.BacklogRecords != last-applied || l.BacklogBytes != want {
		t.Fatalf("backend down: applied %d, backlog %d records %d bytes; want %d, %d records %d bytes",
			l.AppliedSeq, l.BacklogRecords, l.BacklogBytes, applied, last-applied, want)
	}
	down.Store(false)
	if err := s.WaitApplied(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if l := s.Lag(); l.BacklogRecords != 0 || l.BacklogBytes != 0 {
		t.Fatalf("caught up again: backlog of %d records, %d bytes", l.BacklogRecords, l.BacklogBytes)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestStorerBacklogBytesAfterRestart: a journal that was all applied but
// not yet truncated is no backlog for the next storer, even before it has
// applied a batch: with the backend down after a restart, three small
// writes are a backlog of three small records, not of the journal's size.
func TestStorerBacklogBytesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, filepath.Join(dir, "journal"), 0)
	defer j.Close()
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	defer p.Close()
	var down atomic.Bool
	b := switchBackend(p, &down)
	s := NewStorer(j, b, StorerOptions{CPUShare: 1})
	stop := startStorer(t, s)
	applied := appendValues(t, j, "old", 40, 50<<10)
	if err := s.WaitApplied(context.Background(), applied); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := j.Stats(); st.FirstSeq != 1 || st.SizeOnDisk < 2e6 {
		t.Fatalf("journal from %d, %d bytes: the test needs 2 MB applied and kept", st.FirstSeq, st.SizeOnDisk)
	}

	down.Store(true)
	s = NewStorer(j, b, StorerOptions{RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, CPUShare: 1})
	startStorer(t, s)
	appendValues(t, j, "new", 3, 10)
	want := journalBytesFrom(t, j, applied+1)
	l := waitLag(t, s, "backlog after the restart", func(l Lag) bool { return l.AppliedSeq == applied && l.BacklogBytes >= 0 })
	if l.BacklogRecords != 3 || l.BacklogBytes != want || want > 200 {
		t.Fatalf("3 small writes after the restart: backlog %d records %d bytes, want 3 records %d bytes (journal %d bytes)",
			l.BacklogRecords, l.BacklogBytes, want, l.JournalBytes)
	}
}

// TestStorerBacklogBytesDirJournal: the storer of `petrel storer` measures
// the same bytes, from files it only reads, whose finished segments end in
// the writer's zeros.
func TestStorerBacklogBytesDirJournal(t *testing.T) {
	f := startFollowedStorer(t, 3, 100)
	j, s, applied := f.j, f.s, f.applied
	f.down.Store(true)
	segs := j.Stats().Segments
	last := appendValues(t, j, "v", 30, 3000)
	if j.Stats().Segments < segs+3 {
		t.Fatalf("%d segments, then %d: the test needs several rolls", segs, j.Stats().Segments)
	}
	want := journalBytesFrom(t, j, applied+1)
	l := waitLag(t, s, "backlog over a followed journal", func(l Lag) bool {
		return l.Stats.Retries["error"] > 0 && l.BacklogRecords == last-applied
	})
	if l.AppliedSeq != applied || l.BacklogRecords != last-applied || l.BacklogBytes != want {
		t.Fatalf("applied %d, backlog %d records %d bytes; want %d, %d records %d bytes",
			l.AppliedSeq, l.BacklogRecords, l.BacklogBytes, applied, last-applied, want)
	}
}

// TestDirJournalBytesAfter: a followed journal measures from any position
// what the writer's own journal does, before and after truncation.
func TestDirJournalBytesAfter(t *testing.T) {
	_, j, w, d := followedJournal(t, 8<<10, 5, 50)
	defer j.Close()
	defer d.Close()
	var last uint64
	for range 40 {
		last = w.write(10) // a group each: segments roll between them
	}
	if err := d.WaitDurable(last); err != nil {
		t.Fatal(err)
	}
	if j.Stats().Segments < 4 {
		t.Fatalf("%d segments: the test needs several", j.Stats().Segments)
	}
	check := func(when string, from uint64) {
		t.Helper()
		lr, err := j.ReadFrom(from)
		if err != nil {
			t.Fatal(err)
		}
		defer lr.Close()
		dr, err := d.ReadFrom(from)
		if err != nil {
			t.Fatal(err)
		}
		defer dr.Close()
		lp, err := lr.(journal.Positioner).Position()
		if err != nil {
			t.Fatal(err)
		}
		dp, err := dr.(journal.Positioner).Position()
		if err != nil {
			t.Fatal(err)
		}
		want := journalBytesFrom(t, j, from)
		if lp != dp || j.BytesAfter(lp) != want || d.BytesAfter(dp) != want {
			t.Errorf("%s, from %d: positions %+v and %+v, bytes after %d and %d, want %d",
				when, from, lp, dp, j.BytesAfter(lp), d.BytesAfter(dp), want)
		}
		var rec journal.Record
		if err := dr.Next(&rec); err != nil || rec.Seq != from {
			t.Errorf("%s: read from %d after Position: %d, %v", when, from, rec.Seq, err)
		}
	}
	for _, from := range []uint64{1, 77, 200, 333, last} {
		check("before truncation", from)
	}
	if err := d.TruncateBelow(300); err != nil {
		t.Fatal(err)
	}
	if err := j.TruncateBelow(300); err != nil {
		t.Fatal(err)
	}
	for _, from := range []uint64{300, 333, last} {
		check("after truncation", from)
	}
	for range 10 {
		last = w.write(10)
	}
	if err := d.WaitDurable(last); err != nil {
		t.Fatal(err)
	}
	for _, from := range []uint64{300, last - 50, last} {
		check("after more writes", from)
	}
	if got, want := d.BytesAfter(journal.Position{}), j.BytesAfter(journal.Position{}); got != want {
		t.Errorf("from before every segment: %d bytes, the writer's journal %d", got, want)
	}
}

// TestStorerBacklogDirJournalGrowsDuringOutage: `petrel storer` beside a
// server, its backend down. The storer retries its batch and never waits
// for records, and its followed journal used to look at the files only
// then: the backlog it logs and exports stood at its size when the outage
// began while the server went on appending.
func TestStorerBacklogDirJournalGrowsDuringOutage(t *testing.T) {
	f := startFollowedStorer(t, 4, 50)
	j, s, applied := f.j, f.s, f.applied
	f.down.Store(true)
	var prev Lag
	for round := range 3 {
		last := appendValues(t, j, fmt.Sprint("outage", round), 10, 2000)
		want := journalBytesFrom(t, j, applied+1)
		l := waitLag(t, s, fmt.Sprintf("round %d: backlog of %d records, %d bytes", round, last-applied, want), func(l Lag) bool {
			return l.Stats.Retries["error"] > 0 && l.BacklogRecords == last-applied && l.BacklogBytes == want
		})
		if l.AppliedSeq != applied || l.JournalSeq != last || l.BacklogBytes <= prev.BacklogBytes || l.OldestUnapplied < prev.OldestUnapplied {
			t.Fatalf("round %d: %+v after %+v", round, l, prev)
		}
		prev = l
	}
}

// followedStorer is `petrel storer` in a test: a storer following the files
// of a journal the test writes (16 KiB segments), applying to Pebble
// through a switch that takes the backend down.
type followedStorer struct {
	dataDir string
	j       *journal.Local
	d       *DirJournal
	s       *Storer
	stop    func() error
	down    *atomic.Bool
	applied uint64 // the n records written first, all applied
}

// startFollowedStorer writes n records (seeded by seed), starts the storer
// and waits until it has applied them. Everything is closed at cleanup.
func startFollowedStorer(t *testing.T, seed uint64, n int) followedStorer {
	t.Helper()
	f := followedStorer{dataDir: t.TempDir(), down: new(atomic.Bool)}
	f.j = openTestJournal(t, JournalDir(f.dataDir), 16<<10)
	t.Cleanup(func() { f.j.Close() })
	f.applied = newWriter(t, f.j, seed).write(n)
	var err error
	if f.d, err = OpenDirJournal(f.dataDir, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.d.Close() })
	p := openTestPebble(t, PebbleDir(f.dataDir))
	t.Cleanup(func() { p.Close() })
	f.s = NewStorer(f.d, switchBackend(p, f.down), StorerOptions{RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, CPUShare: 1})
	f.stop = startStorer(t, f.s) // its cleanup runs first
	if err := f.s.WaitApplied(context.Background(), f.applied); err != nil {
		t.Fatal(err)
	}
	return f
}
