package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDelayedFlag: the delayed flag belongs to flush_all records only; on
// any other type it is refused when appending and is corruption on disk.
func TestDelayedFlag(t *testing.T) {
	f := func(typ Type, wantOK bool) {
		t.Helper()
		r := Record{Seq: 3, Type: typ, Key: []byte("k"), At: 9, Delayed: true}
		if typ == TypeFlushAll {
			r.Key = nil
		}
		if err := validate(&r); (err == nil) != wantOK {
			t.Errorf("%v: validate = %v", typ, err)
		}
		// On disk: encode, then set the flag by hand and seal again.
		r.Delayed = false
		b := AppendRecord(nil, &r)
		b[frameHeader+8] |= delayedFlag
		sealFrame(b)
		var got Record
		_, err := DecodeRecord(b, &got)
		switch {
		case wantOK && (err != nil || !got.Delayed || got.Type != typ || got.At != 9):
			t.Errorf("%v: decoded %+v, %v", typ, got, err)
		case !wantOK && !errors.Is(err, ErrCorrupt):
			t.Errorf("%v with the delayed flag: %v, want ErrCorrupt", typ, err)
		}
	}
	f(TypeFlushAll, true)
	f(TypeSet, false)
	f(TypeDelete, false)
	f(TypeTouch, false)
}

// TestDelayedFlushMarks: recovery lists flush_alls with their flag.
func TestDelayedFlushMarks(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir})
	for _, r := range []Record{
		{Type: TypeFlushAll, At: 100, Delayed: true},
		{Type: TypeSet, Key: []byte("a")},
		{Type: TypeFlushAll, At: 101},
	} {
		if _, err := j.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	j = openT(t, Options{Dir: dir})
	defer j.Close()
	want := []FlushMark{{Seq: 1, At: 100, Delayed: true, Marked: true}, {Seq: 3, At: 101, Marked: true}}
	if got := j.Recovery().Flushes; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("flush marks %+v, want %+v", got, want)
	}
}

// TestFlushMarksVersion1: a version-1 segment does not mark delayed
// flushes, and its flush_alls say so (Marked false).
func TestFlushMarksVersion1(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir})
	if _, err := j.Append(&Record{Type: TypeFlushAll, At: 100}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	setVersion(t, filepath.Join(dir, segName(1)), 1)
	j = openT(t, Options{Dir: dir})
	defer j.Close()
	if got := j.Recovery().Flushes; len(got) != 1 || got[0] != (FlushMark{Seq: 1, At: 100}) {
		t.Fatalf("flush marks of a version-1 segment %+v", got)
	}
}

// setVersion rewrites the format version in a segment file's header.
func setVersion(t *testing.T, name string, v uint16) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(b[8:], v)
	binary.LittleEndian.PutUint32(b[20:], crc32.Checksum(b[:20], castagnoli))
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func segVersion(t *testing.T, name string) uint16 {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil || len(b) < headerSize {
		t.Fatalf("read %s: %d bytes, %v", name, len(b), err)
	}
	return headerVersion(b)
}

// TestReadVersion1: segments of format version 1, as earlier builds wrote
// them, are read as they are (their flush_alls read as not delayed), and
// appending continues in a new segment of the current version, so that no
// version-1 segment ever holds a flagged record.
func TestReadVersion1(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, SegmentSize: 1 << 10})
	appendN(t, j, 30)
	j.Close()
	segs := listT(t, dir)
	if len(segs) < 2 {
		t.Fatalf("%d segments", len(segs))
	}
	for _, s := range segs {
		setVersion(t, filepath.Join(dir, segName(s)), 1)
	}
	var logged []string
	j = openT(t, Options{Dir: dir, SegmentSize: 1 << 10, Logf: func(f string, a ...any) { logged = append(logged, f) }})
	if last, err := readChecked(j, 1); err != nil || last != 30 {
		t.Fatalf("reading version-1 segments: %d, %v", last, err)
	}
	if r := j.Recovery(); r.LastSeq != 30 || len(r.Warnings) != 0 {
		t.Fatalf("recovery of version-1 segments: %+v", r)
	}
	if got := listT(t, dir); len(got) != len(segs)+1 || got[len(got)-1] != 31 {
		t.Fatalf("segments after opening version-1 ones: %v (was %v)", got, segs)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "format version") {
		t.Errorf("log: %q", logged)
	}
	appendN(t, j, 5)
	if last, err := readChecked(j, 1); err != nil || last != 35 {
		t.Fatalf("reading across versions: %d, %v", last, err)
	}
	j.Close()
	if v := segVersion(t, filepath.Join(dir, segName(31))); v != formatVersion {
		t.Fatalf("new segment has version %d", v)
	}
	j = openT(t, Options{Dir: dir, SegmentSize: 1 << 10})
	defer j.Close()
	if last, err := readChecked(j, 1); err != nil || last != 35 {
		t.Fatalf("after reopening: %d, %v", last, err)
	}
	if got := listT(t, dir); got[len(got)-1] != 31 {
		t.Fatalf("reopening rolled again: %v", got)
	}
}

// TestReadVersion1Empty: a version-1 last segment that holds no record is
// started again in the current version, under the same name.
func TestReadVersion1Empty(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir})
	appendN(t, j, 3)
	j.Close()
	name := filepath.Join(dir, segName(1))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b[:headerSize], 0o644); err != nil {
		t.Fatal(err)
	}
	setVersion(t, name, 1)
	j = openT(t, Options{Dir: dir})
	defer j.Close()
	if r := j.Recovery(); r.LastSeq != 0 || r.Segments != 1 {
		t.Fatalf("recovery: %+v", r)
	}
	if v := segVersion(t, name); v != formatVersion {
		t.Fatalf("segment has version %d", v)
	}
	appendN(t, j, 2)
	if last, err := readChecked(j, 1); err != nil || last != 2 {
		t.Fatalf("%d, %v", last, err)
	}
}

// TestRefuseNewerVersion: a segment from a later format is not read.
func TestRefuseNewerVersion(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, SegmentSize: 1 << 10})
	appendN(t, j, 30)
	j.Close()
	segs := listT(t, dir)
	setVersion(t, filepath.Join(dir, segName(segs[0])), formatVersion+1)
	_, err := Open(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "format version 3") {
		t.Fatalf("open over a version-%d segment: %v", formatVersion+1, err)
	}
	if !strings.Contains(err.Error(), segName(segs[0])) {
		t.Errorf("the refusal does not name the file: %v", err)
	}
}
