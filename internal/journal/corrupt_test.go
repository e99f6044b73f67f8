package journal

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// golden builds a one-segment journal of 35 records (single-record groups
// and a few multi-record ones) and returns its bytes and the offset where
// its last group starts.
func golden(t *testing.T) ([]byte, int64) {
	t.Helper()
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir})
	appendN(t, j, 20)
	var last uint64
	for i := uint64(21); i <= 30; i++ {
		r := testRecord(i)
		last, _ = j.Append(&r)
	}
	if err := j.WaitDurable(last); err != nil {
		t.Fatal(err)
	}
	appendN(t, j, 5)
	start, end := j.groupStart, j.writeOff
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, segName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) <= end || !bytes.Equal(b[end:], make([]byte, len(b)-int(end))) {
		t.Fatalf("segment of %d bytes, records end at %d: want a zero-filled tail after them", len(b), end)
	}
	return b[:end], start // without the zero-filled tail (zero.go)
}

// recoverBytes opens a journal whose only segment holds data. It returns
// the last sequence recovered, or the refusal. A recovered journal must
// hold exactly testRecord(1..last).
func recoverBytes(t *testing.T, data []byte, opts Options) (*Local, uint64, error) {
	t.Helper()
	opts.Dir = "/mem"
	fs := newMemFS()
	opts.FS = fs
	fs.files[filepath.Join(opts.Dir, segName(1))] = &memFile{data: bytes.Clone(data)}
	j, err := Open(opts)
	if err != nil {
		if !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), segName(1)) {
			t.Fatalf("refusal does not say what and where: %v", err)
		}
		return nil, 0, err
	}
	last, err := readChecked(j, 1)
	if err != nil {
		t.Fatalf("recovered a wrong record: %v", err)
	}
	if r := j.Recovery(); r.LastSeq != last {
		t.Fatalf("recovery says last %d, read %d", r.LastSeq, last)
	}
	return j, last, nil
}

// recordEnds returns the offsets where each record of a clean segment ends.
func recordEnds(t *testing.T, data []byte) []int64 {
	var ends []int64
	for off := int64(headerSize); off < int64(len(data)); {
		var r Record
		n, err := DecodeRecord(data[off:], &r)
		if err != nil {
			t.Fatal(err)
		}
		off += int64(n)
		ends = append(ends, off)
	}
	return ends
}

// wholeBefore is how many records end at or before off.
func wholeBefore(ends []int64, off int64) uint64 {
	n := uint64(0)
	for n < uint64(len(ends)) && ends[n] <= off {
		n++
	}
	return n
}

func TestRecoverBitFlips(t *testing.T) {
	data, lastGroup := golden(t)
	ends := recordEnds(t, data)
	for bit := range int64(len(data)) * 8 {
		off := bit / 8
		b := bytes.Clone(data)
		b[off] ^= 1 << (bit % 8)
		j, last, err := recoverBytes(t, b, Options{})
		switch {
		case off < lastGroup && err == nil:
			t.Fatalf("flip at %d (before the last group at %d) recovered %d records instead of refusing", off, lastGroup, last)
		case off >= lastGroup && err != nil:
			t.Fatalf("flip at %d in the last group: %v", off, err)
		case off >= lastGroup && last != 34:
			t.Fatalf("flip at %d in the last group: recovered %d records, want 34", off, last)
		}
		if j != nil {
			j.Close()
			continue
		}
		// Repair keeps exactly the records before the damaged one.
		j, last, err = recoverBytes(t, b, Options{Repair: true})
		want := wholeBefore(ends, off)
		if off < headerSize {
			want = 0
		}
		if err != nil || last != want {
			t.Fatalf("flip at %d, repair: recovered %d, %v; want %d", off, last, err, want)
		}
		j.Close()
	}
}

func TestRecoverTruncation(t *testing.T) {
	data, _ := golden(t)
	ends := recordEnds(t, data)
	for cut := range int64(len(data)) + 1 {
		j, last, err := recoverBytes(t, data[:cut], Options{})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if want := wholeBefore(ends, cut); last != want {
			t.Fatalf("cut at %d: recovered %d records, want %d", cut, last, wholeBefore(ends, cut))
		}
		if cut%7 == 0 { // and the journal goes on from there
			appendN(t, j, 1)
			if got, err := readChecked(j, 1); err != nil || got != last+1 {
				t.Fatalf("cut at %d, then append: %d, %v", cut, got, err)
			}
		}
		j.Close()
	}
}

func TestRecoverAppendedGarbage(t *testing.T) {
	data, _ := golden(t)
	rng := rand.New(rand.NewPCG(1, 2))
	f := func(name string, junk []byte) {
		t.Helper()
		j, last, err := recoverBytes(t, append(bytes.Clone(data), junk...), Options{})
		if err != nil || last != 35 {
			t.Fatalf("%s: recovered %d, %v", name, last, err)
		}
		if r := j.Recovery(); len(r.Truncated) != 1 || r.Truncated[0].Offset != int64(len(data)) || len(r.Warnings) == 0 {
			t.Fatalf("%s: recovery report %+v", name, r)
		}
		j.Close()
	}
	// Zeros are the writer's own zero-filled tail: a clean end, no cut.
	j, last, err := recoverBytes(t, append(bytes.Clone(data), make([]byte, 4096)...), Options{})
	if err != nil || last != 35 || len(j.Recovery().Truncated) != 0 || len(j.Recovery().Warnings) != 0 {
		t.Fatalf("zero tail: recovered %d, %v, %+v", last, err, j.Recovery())
	}
	j.Close()
	f("zeros then a byte", append(make([]byte, 4096), 7))
	f("one byte", []byte{7})
	f("copy of the last record", data[len(data)-30:])
	for i := range 50 {
		junk := make([]byte, 1+rng.IntN(3000))
		for k := range junk {
			junk[k] = byte(rng.Uint32())
		}
		f("random "+string(rune('a'+i%26)), junk)
	}
}

// tornGroup encodes records first..last as one group, as the writer does.
func tornGroup(first, last uint64) []byte {
	var buf []byte
	off := 0
	for i := first; i <= last; i++ {
		r := testRecord(i)
		r.Seq = i
		if r.Type == TypeSet {
			r.CAS = i
		}
		off = len(buf)
		buf = AppendRecord(buf, &r)
	}
	return markGroupEnd(buf, off, first)
}

func TestRecoverTornGroupWithHoles(t *testing.T) {
	data, _ := golden(t)
	// The final group reached the disk with a hole in its middle, as a
	// crash during one write may leave it: a torn tail, not corruption.
	g := tornGroup(36, 40)
	clear(g[40:60])
	j, last, err := recoverBytes(t, append(bytes.Clone(data), g...), Options{})
	if err != nil || last != 36 { // record 36 is whole; 37 has the hole
		t.Fatalf("torn final group: %d, %v", last, err)
	}
	j.Close()
	// A hole in a group that a later complete group follows is corruption.
	g1, g2 := tornGroup(36, 38), tornGroup(39, 40)
	clear(g1[40:60])
	if _, _, err := recoverBytes(t, append(append(bytes.Clone(data), g1...), g2...), Options{}); err == nil {
		t.Fatal("a damaged group followed by a complete one was taken for a torn tail")
	}
}

func TestRecoverMidJournal(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, SegmentSize: 1 << 10})
	appendN(t, j, 120)
	j.Close()
	segs := listT(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	victim := filepath.Join(dir, segName(segs[1]))
	b, _ := os.ReadFile(victim)
	const at = headerSize + 30
	b[at] ^= 0x10
	os.WriteFile(victim, b, 0o644)

	_, err := Open(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), segName(segs[1])) || !strings.Contains(err.Error(), "offset 24") {
		t.Fatalf("mid-journal corruption: %v", err)
	}
	if got := listT(t, dir); len(got) != len(segs) {
		t.Fatalf("a refused open changed the files: %v", got)
	}

	var warnings []string
	j, err = Open(Options{Dir: dir, Repair: true, Logf: func(f string, a ...any) { warnings = append(warnings, f) }})
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	defer j.Close()
	r := j.Recovery()
	if r.LastSeq != segs[1]-1 || len(r.Dropped) != len(segs)-2 || len(warnings) == 0 {
		t.Fatalf("repair report %+v", r)
	}
	if last, err := readChecked(j, 1); err != nil || last != segs[1]-1 {
		t.Fatalf("after repair: %d, %v", last, err)
	}
	appendN(t, j, 3)
	if last, err := readChecked(j, 1); err != nil || last != segs[1]+2 {
		t.Fatalf("append after repair: %d, %v", last, err)
	}
}

func TestRecoverMissingSegment(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, SegmentSize: 1 << 10})
	appendN(t, j, 100)
	j.Close()
	segs := listT(t, dir)
	if err := os.Remove(filepath.Join(dir, segName(segs[2]))); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), segName(segs[3])) || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("gap in the sequence: %v", err)
	}
	j, err = Open(Options{Dir: dir, Repair: true})
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	defer j.Close()
	if last, err := readChecked(j, 1); err != nil || last != segs[2]-1 || len(j.Recovery().Dropped) != len(segs)-3 {
		t.Fatalf("after repair: %d, %v, %+v", last, err, j.Recovery())
	}
}
