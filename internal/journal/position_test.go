package journal

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// frameSizes reads the whole journal and returns each record's size on
// disk by sequence, group-end trailers included.
func frameSizes(t *testing.T, j *Local) map[uint64]int64 {
	t.Helper()
	r, err := j.ReadFrom(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sizes := map[uint64]int64{}
	var rec Record
	for {
		err := r.Next(&rec)
		if errors.Is(err, io.EOF) {
			return sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes[rec.Seq] = int64(EncodedLen(&rec))
	}
}

// sumFrom is the bytes of the records from seq to the end.
func sumFrom(sizes map[uint64]int64, seq uint64) int64 {
	var n int64
	for s, b := range sizes {
		if s >= seq {
			n += b
		}
	}
	return n
}

func position(t *testing.T, r Reader) Position {
	t.Helper()
	p, err := r.(Positioner).Position()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPositionBytesAfter: from any reader position, BytesAfter is exactly
// the bytes of the records not read yet, across segments, and Position
// leaves the reader where it was.
func TestPositionBytesAfter(t *testing.T) {
	j := openT(t, Options{Dir: t.TempDir(), SegmentSize: 2 << 10})
	defer j.Close()
	appendN(t, j, 300)
	if s := j.Stats(); s.Segments < 5 {
		t.Fatalf("%d segments; the test needs several", s.Segments)
	}
	sizes := frameSizes(t, j)
	if got, want := j.BytesAfter(Position{}), sumFrom(sizes, 1); got != want {
		t.Errorf("from before every segment: %d bytes, want %d", got, want)
	}
	for _, from := range []uint64{1, 2, 57, 150, 299, 300, 301} {
		r, err := j.ReadFrom(from)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		for seq := from; ; seq++ {
			if seq == from || seq%3 != 0 { // and some records read with no Position between
				p := position(t, r)
				if got, want := j.BytesAfter(p), sumFrom(sizes, seq); got != want {
					t.Fatalf("reader from %d before %d at %+v: %d bytes after, want %d", from, seq, p, got, want)
				}
				if p2 := position(t, r); p2 != p {
					t.Fatalf("position moved without a read: %+v then %+v", p, p2)
				}
			}
			err := r.Next(&rec)
			if errors.Is(err, io.EOF) {
				if seq != 301 {
					t.Fatalf("reader from %d: EOF before %d", from, seq)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := checkRecord(&rec, seq); err != nil {
				t.Fatalf("reader from %d: %v", from, err)
			}
		}
		r.Close()
	}
}

// TestPositionFollowsAppends: a reader at the end of the journal measures
// what is appended after it, across a segment roll.
func TestPositionFollowsAppends(t *testing.T) {
	j := openT(t, Options{Dir: t.TempDir(), SegmentSize: 2 << 10})
	defer j.Close()
	appendN(t, j, 10)
	r, err := j.ReadFrom(11) // not yet appended
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := position(t, r)
	if n := j.BytesAfter(p); n != 0 {
		t.Fatalf("at the end: %d bytes after", n)
	}
	segs := j.Stats().Segments
	appendN(t, j, 100)
	if j.Stats().Segments == segs {
		t.Fatal("no segment roll")
	}
	sizes := frameSizes(t, j)
	if got, want := j.BytesAfter(p), sumFrom(sizes, 11); got != want {
		t.Fatalf("after 100 appends: %d bytes after, want %d", got, want)
	}
	var rec Record
	if err := r.Next(&rec); err != nil || checkRecord(&rec, 11) != nil {
		t.Fatalf("next after Position: %+v, %v", rec, err)
	}
}

// TestPositionTruncation: truncation below a reader changes nothing it has
// not read, and a position in a truncated segment counts only the
// segments that are left.
func TestPositionTruncation(t *testing.T) {
	j := openT(t, Options{Dir: t.TempDir(), SegmentSize: 2 << 10})
	defer j.Close()
	appendN(t, j, 300)
	sizes := frameSizes(t, j)
	old, err := j.ReadFrom(1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	first := position(t, old)
	r, err := j.ReadFrom(200)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := position(t, r)
	if err := j.TruncateBelow(200); err != nil {
		t.Fatal(err)
	}
	kept := j.Stats().FirstSeq
	if kept == 1 || kept > 200 {
		t.Fatalf("truncated below 200 to %d", kept)
	}
	if got, want := j.BytesAfter(p), sumFrom(sizes, 200); got != want {
		t.Errorf("after truncation: %d bytes after 200, want %d", got, want)
	}
	if got, want := j.BytesAfter(first), sumFrom(sizes, kept); got != want {
		t.Errorf("from a truncated segment: %d bytes, want %d (from %d on)", got, want, kept)
	}
	if got, want := j.BytesAfter(Position{}), sumFrom(sizes, kept); got != want {
		t.Errorf("from before every segment: %d bytes, want %d", got, want)
	}
}

// TestPositionLargeRecords: a few large records weigh what they weigh,
// whatever the records before them were (the estimate from the average
// applied record size that this replaced did not see them).
func TestPositionLargeRecords(t *testing.T) {
	j := openT(t, Options{Dir: t.TempDir()})
	defer j.Close()
	appendN(t, j, 100)
	r, err := j.ReadFrom(101)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := position(t, r)
	for i := range 5 {
		rec := Record{Type: TypeSet, Key: []byte{'k', byte(i)}, Value: bytes.Repeat([]byte{'v'}, 500<<10)}
		seq, err := j.Append(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.WaitDurable(seq); err != nil {
			t.Fatal(err)
		}
	}
	want := sumFrom(frameSizes(t, j), 101)
	if got := j.BytesAfter(p); got != want || got < 5*500<<10 {
		t.Fatalf("5 records of 500 KiB: %d bytes after, want %d", got, want)
	}
}
