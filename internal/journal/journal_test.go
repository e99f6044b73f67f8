package journal

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir})
	if s := j.Stats(); s.NextSeq != 1 || s.DurableSeq != 0 {
		t.Fatalf("new journal: next %d durable %d", s.NextSeq, s.DurableSeq)
	}
	appendN(t, j, 300)
	if last, err := readChecked(j, 0); err != nil || last != 300 {
		t.Fatalf("read back: last %d, %v", last, err)
	}
	if last, err := readChecked(j, 123); err != nil || last != 300 {
		t.Fatalf("read from 123: last %d, %v", last, err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	r := testRecord(301)
	if _, err := j.Append(&r); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}

	j = openT(t, Options{Dir: dir})
	defer j.Close()
	if rec := j.Recovery(); rec.LastSeq != 300 || rec.Records != 300 || len(rec.Warnings) != 0 {
		t.Fatalf("recovery: %+v", rec)
	}
	appendN(t, j, 10) // continues at 301
	if last, err := readChecked(j, 1); err != nil || last != 310 {
		t.Fatalf("after reopen: last %d, %v", last, err)
	}
}

func TestConcurrentAppenders(t *testing.T) {
	const writers, each = 32, 300
	j := openT(t, Options{Dir: t.TempDir(), MaxGroupBytes: 4 << 10, MaxPendingBytes: 16 << 10})
	defer j.Close()
	// Each writer appends records naming itself and its count, and notes
	// the sequence it got; the journal must hold exactly those, in order.
	got := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte{byte(w)}
			for i := range each {
				r := Record{Type: TypeSet, Key: key, Value: []byte{byte(i), byte(i >> 8)}}
				seq, err := j.Append(&r)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if err := j.WaitDurable(seq); err != nil {
					t.Errorf("wait: %v", err)
					return
				}
				got[w] = append(got[w], seq)
			}
		}()
	}
	wg.Wait()
	owner := map[uint64][2]int{}
	for w, seqs := range got {
		for i, s := range seqs {
			if _, dup := owner[s]; dup {
				t.Fatalf("sequence %d handed out twice", s)
			}
			owner[s] = [2]int{w, i}
		}
	}
	rd, err := j.ReadFrom(1)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var rec Record
	for seq := uint64(1); seq <= writers*each; seq++ {
		if err := rd.Next(&rec); err != nil {
			t.Fatalf("read %d: %v", seq, err)
		}
		o, ok := owner[seq]
		if rec.Seq != seq || !ok || rec.Key[0] != byte(o[0]) || rec.Value[0] != byte(o[1]) || rec.Value[1] != byte(o[1]>>8) || rec.CAS != seq {
			t.Fatalf("record %d = %+v, appended by writer %d as its #%d", seq, rec, o[0], o[1])
		}
	}
	if err := rd.Next(&rec); err == nil {
		t.Fatalf("record beyond the last: %+v", rec)
	}
	s := j.Stats()
	if s.Records != writers*each || s.PendingBytes != 0 {
		t.Fatalf("stats: %+v", s)
	}
	// Group commit groups: 32 appenders waiting on fsyncs share them.
	if s.RecordsPerGroup() <= 1 {
		t.Fatalf("records per group %.2f, want > 1 (groups %d)", s.RecordsPerGroup(), s.Groups)
	}
	t.Logf("groups %d, records/group %.1f, syncs %d, avg sync %v", s.Groups, s.RecordsPerGroup(), s.Syncs, s.AvgSync())
}

func TestBackPressureAndClose(t *testing.T) {
	dir := t.TempDir()
	// A pending bound of one group: appenders that do not wait must block
	// rather than queue without bound, and Close must still write it all.
	j := openT(t, Options{Dir: dir, MaxGroupBytes: 512, MaxPendingBytes: 512})
	const n = 2000
	var last uint64
	for i := uint64(1); i <= n; i++ {
		r := testRecord(i)
		seq, err := j.Append(&r)
		if err != nil || seq != i {
			t.Fatalf("append %d: %d, %v", i, seq, err)
		}
		if p := j.Stats().PendingBytes; p > 512+EncodedLen(&r) {
			t.Fatalf("pending %d bytes, bound 512", p)
		}
		last = seq
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.WaitDurable(last); err != nil {
		t.Fatalf("after close, wait for the last append: %v", err)
	}
	j = openT(t, Options{Dir: dir})
	defer j.Close()
	if got, err := readChecked(j, 1); err != nil || got != n {
		t.Fatalf("reopened: last %d, %v", got, err)
	}
}

func TestSegmentsAndTruncateBelow(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, SegmentSize: 2 << 10})
	appendN(t, j, 400)
	segs := listT(t, dir)
	if len(segs) < 5 {
		t.Fatalf("only %d segments for 400 records in 2 KiB segments", len(segs))
	}
	cut := segs[3] + 2 // inside the fourth segment
	if err := j.TruncateBelow(cut); err != nil {
		t.Fatal(err)
	}
	after := listT(t, dir)
	if len(after) != len(segs)-3 || after[0] != segs[3] {
		t.Fatalf("truncate below %d: segments %v became %v", cut, segs, after)
	}
	if _, err := j.ReadFrom(segs[3] - 1); !errors.Is(err, ErrTruncated) {
		t.Fatalf("read below the first kept record: %v", err)
	}
	if last, err := readChecked(j, segs[3]); err != nil || last != 400 {
		t.Fatalf("read from %d: last %d, %v", segs[3], last, err)
	}
	if err := j.TruncateBelow(1 << 62); err != nil { // never removes the active segment
		t.Fatal(err)
	}
	if got := listT(t, dir); len(got) != 1 || got[0] != segs[len(segs)-1] {
		t.Fatalf("truncate everything: %v", got)
	}
	j.Close()
	j = openT(t, Options{Dir: dir, SegmentSize: 2 << 10})
	defer j.Close()
	if r := j.Recovery(); r.FirstSeq != segs[len(segs)-1] || r.LastSeq != 400 {
		t.Fatalf("recovery after truncation: %+v", r)
	}
	appendN(t, j, 50)
	if last, err := readChecked(j, 0); err != nil || last != 450 {
		t.Fatalf("after reopen: %d, %v", last, err)
	}
}

func listT(t *testing.T, dir string) []uint64 {
	t.Helper()
	s, err := listSegments(OSFS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAsyncMode(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, Mode: ModeAsync, MaxDelay: 100 * time.Microsecond})
	appendN(t, j, 100)
	if s := j.Stats(); s.DurableSeq != 100 || s.Records != 100 {
		t.Fatalf("async stats %+v", s)
	}
	if err := j.Close(); err != nil { // Close syncs
		t.Fatal(err)
	}
	j = openT(t, Options{Dir: dir, Mode: ModeAsync})
	defer j.Close()
	if last, err := readChecked(j, 0); err != nil || last != 100 {
		t.Fatalf("reopened async: %d, %v", last, err)
	}
}

func TestFollowWhileWriting(t *testing.T) {
	j := openT(t, Options{Dir: t.TempDir(), SegmentSize: 4 << 10})
	defer j.Close()
	const n = 1000
	done := make(chan error, 1)
	go func() {
		rd, err := j.ReadFrom(1)
		if err != nil {
			done <- err
			return
		}
		defer rd.Close()
		var rec Record
		for seq := uint64(1); seq <= n; {
			if err := j.WaitDurable(seq); err != nil {
				done <- err
				return
			}
			err := rd.Next(&rec)
			if err == nil {
				if err := checkRecord(&rec, seq); err != nil {
					done <- err
					return
				}
				seq++
			} else if !errors.Is(err, io.EOF) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := uint64(1); i <= n; i++ {
		r := testRecord(i)
		if _, err := j.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("follower: %v", err)
	}
}

func TestOpenIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "README"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, "1.journal"), []byte("not ours"), 0o644)
	j := openT(t, Options{Dir: dir})
	defer j.Close()
	appendN(t, j, 3)
	if last, err := readChecked(j, 0); err != nil || last != 3 {
		t.Fatalf("%d, %v", last, err)
	}
}

func TestFollowAndTruncateConcurrently(t *testing.T) {
	// Appenders, a follower, and a storer-like truncator that drops what
	// the follower has consumed, all at once (run with -race).
	j := openT(t, Options{Dir: t.TempDir(), SegmentSize: 2 << 10})
	defer j.Close()
	const writers, each = 4, 300
	var consumed atomic.Uint64
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r := Record{Type: TypeFlushAll, At: 42}
				if _, err := j.Append(&r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	truncDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				truncDone <- nil
				return
			default:
			}
			if err := j.TruncateBelow(consumed.Load()); err != nil {
				truncDone <- err
				return
			}
		}
	}()
	rd, err := j.ReadFrom(1)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var rec Record
	for seq := uint64(1); seq <= writers*each; {
		if err := j.WaitDurable(seq); err != nil {
			t.Fatal(err)
		}
		switch err := rd.Next(&rec); {
		case errors.Is(err, io.EOF):
		case err != nil:
			t.Fatalf("follower at %d: %v", seq, err)
		case rec.Seq != seq || rec.Type != TypeFlushAll || rec.At != 42:
			t.Fatalf("follower at %d read %+v", seq, rec)
		default:
			seq++
			consumed.Store(seq)
		}
	}
	close(stop)
	if err := <-truncDone; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if s := j.Stats(); s.Segments > 3 {
		t.Fatalf("%d segments left after truncating what was read", s.Segments)
	}
}
