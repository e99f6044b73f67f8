package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// testRecord is the record the tests append as the i-th one: its content
// is a function of i, so a record read back can be checked exactly.
func testRecord(i uint64) Record {
	key := []byte("key-" + strconv.FormatUint(i, 10))
	switch i % 4 {
	case 0:
		return Record{Type: TypeDelete, Key: key}
	case 1, 2:
		return Record{Type: TypeSet, Key: key, Value: bytes.Repeat([]byte{byte(i)}, int(i%50)),
			Flags: uint32(i), Exptime: int64(i) * 3}
	default:
		return Record{Type: TypeTouch, Key: key, Exptime: int64(i)}
	}
}

// checkRecord verifies that got is testRecord(seq) with sequence seq.
func checkRecord(got *Record, seq uint64) error {
	want := testRecord(seq)
	want.Seq = seq
	if want.Type == TypeSet {
		want.CAS = seq
	}
	got.groupEnd, got.groupFirst = false, 0
	if !equalRecords(got, &want) {
		return fmt.Errorf("record %d: got %+v, want %+v", seq, *got, want)
	}
	return nil
}

func openT(t *testing.T, opts Options) *Local {
	t.Helper()
	j, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return j
}

// appendN appends testRecord(i) for the next n sequences, one at a time,
// waiting for each (so every record is its own group).
func appendN(t *testing.T, j *Local, n int) {
	t.Helper()
	for range n {
		r := testRecord(j.Stats().NextSeq)
		seq, err := j.Append(&r)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if err := j.WaitDurable(seq); err != nil {
			t.Fatalf("wait %d: %v", seq, err)
		}
	}
}

// readChecked reads every record from seq and checks each against
// testRecord; it returns the last sequence read (seq-1 when none). seq 0
// reads from the first record kept.
func readChecked(j Journal, seq uint64) (uint64, error) {
	r, err := j.ReadFrom(seq)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var rec Record
	last := seq - 1
	for {
		err := r.Next(&rec)
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return last, err
		}
		if seq == 0 && last == 1<<64-1 {
			last = rec.Seq - 1 // from the first record kept
		}
		if rec.Seq != last+1 {
			return last, fmt.Errorf("read sequence %d after %d", rec.Seq, last)
		}
		if err := checkRecord(&rec, rec.Seq); err != nil {
			return last, err
		}
		last = rec.Seq
	}
}
