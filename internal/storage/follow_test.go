package storage

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"petrel/internal/journal"
)

// readAll reads a journal from seq to its end.
func readAll(j journal.Journal, seq uint64) (n int, last uint64, err error) {
	rd, err := j.ReadFrom(seq)
	if err != nil {
		return 0, 0, err
	}
	defer rd.Close()
	var r journal.Record
	for {
		if err := rd.Next(&r); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return n, last, err
		}
		n, last = n+1, r.Seq
	}
}

func TestDirJournalTailAndCorruption(t *testing.T) {
	dataDir := t.TempDir()
	j := openTestJournal(t, JournalDir(dataDir), 2<<10)
	w := newWriter(t, j, 9)
	var last uint64
	for range 20 {
		last = w.write(10) // a group each: segments roll between groups
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegmentFiles(JournalDir(dataDir))
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments, %v; the test wants several", len(segs), err)
	}
	f := func(name string, wantN int, wantLast uint64, wantErr error) {
		t.Helper()
		d, err := OpenDirJournal(dataDir, time.Millisecond)
		if err == nil {
			defer d.Close()
			if d.DurableSeq() != wantLast && wantErr == nil {
				t.Errorf("%s: DurableSeq = %d, want %d", name, d.DurableSeq(), wantLast)
			}
			var n int
			var got uint64
			n, got, err = readAll(d, 1)
			if err == nil && (n != wantN || got != wantLast) {
				t.Errorf("%s: read %d records to %d, want %d to %d", name, n, got, wantN, wantLast)
			}
		}
		if !errors.Is(err, wantErr) && (wantErr != nil || err != nil) {
			t.Errorf("%s: err = %v, want %v", name, err, wantErr)
		}
	}
	f("intact", int(last), last, nil)
	// A write in progress at the end of the newest segment is not there yet.
	tail := segs[len(segs)-1].path
	fh, err := os.OpenFile(tail, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5})
	fh.Close()
	f("partial frame at the tail", int(last), last, nil)
	// Damage in an older segment is corruption.
	b, err := os.ReadFile(segs[1].path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0xff
	if err := os.WriteFile(segs[1].path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f("damage mid-journal", 0, 0, journal.ErrCorrupt)
}

// A follower reading the live journal: the newest segment's zero-filled
// tail (internal/journal/zero.go) is where records will appear, so a read
// that reached it must see them once written, in the same segment and
// across rolls.
func TestDirJournalFollowsLiveWriter(t *testing.T) {
	dataDir := t.TempDir()
	j := openTestJournal(t, JournalDir(dataDir), 4<<10)
	defer j.Close()
	w := newWriter(t, j, 3)
	last := w.write(5)
	d, err := OpenDirJournal(dataDir, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rd, err := d.ReadFrom(1)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var r journal.Record
	next := uint64(1)
	drain := func() {
		t.Helper()
		for {
			err := rd.Next(&r)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != next {
				t.Fatalf("read sequence %d, want %d", r.Seq, next)
			}
			next++
		}
	}
	for round := range 6 {
		if err := d.WaitDurable(last); err != nil {
			t.Fatal(err)
		}
		drain()
		if next != last+1 {
			t.Fatalf("round %d: read up to %d, the writer is at %d", round, next-1, last)
		}
		last = w.write(1 + 7*round) // small rounds stay in one segment, big ones roll
	}
}
