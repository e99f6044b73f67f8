package journal

import (
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Segments are zero-filled ahead of their records, finished ones included,
// and recovery takes the zeros as a clean end: no cut, no warning.
func TestZeroFilledTails(t *testing.T) {
	dir := t.TempDir()
	const size = 8 << 10
	j := openT(t, Options{Dir: dir, SegmentSize: size})
	appendN(t, j, 300)
	segs := listT(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	for _, s := range segs[:len(segs)-1] {
		fi, err := os.Stat(j.path(s))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != size {
			t.Fatalf("segment %d: %d bytes, want the whole %d zero-filled", s, fi.Size(), size)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		j = openT(t, Options{Dir: dir, SegmentSize: size})
		r := j.Recovery()
		if want := uint64(300 + 20*round); r.LastSeq != want || len(r.Truncated) != 0 || len(r.Warnings) != 0 || len(r.Dropped) != 0 {
			t.Fatalf("round %d: recovery %+v", round, r)
		}
		appendN(t, j, 20) // overwrites the zeros
		if last, err := readChecked(j, 0); err != nil || last != uint64(320+20*round) {
			t.Fatalf("round %d: read %d, %v", round, last, err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Groups written by waiters (commit.go) and groups nobody waits for
// (written by the sweep) all arrive, in order, under concurrency.
func TestWaitersAndSweepWrite(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(map[bool]string{false: "Ps", true: "single P"}[single], func(t *testing.T) {
			j := openT(t, Options{Dir: t.TempDir()})
			defer j.Close()
			if single {
				// The writer's yield (commit.go), whatever GOMAXPROCS is;
				// the sweep would reset it within 10 ms, so stop that.
				prev := runtime.GOMAXPROCS(1)
				defer runtime.GOMAXPROCS(prev)
				gomaxprocs.Store(1)
			}
			waitersAndSweep(t, j)
		})
	}
}

func waitersAndSweep(t *testing.T, j *Local) {
	var wg sync.WaitGroup
	var mu sync.Mutex // testRecord needs the sequence Append will assign
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				mu.Lock()
				r := testRecord(j.Stats().NextSeq)
				seq, err := j.Append(&r)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if g%2 == 0 || i == 199 { // odd goroutines mostly never wait
					if err := j.WaitDurable(seq); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	r := testRecord(j.Stats().NextSeq)
	last, err := j.Append(&r) // waited for by nobody: the sweep writes it
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for j.DurableSeq() < last {
		if err := j.Err(); err != nil {
			t.Fatal(err)
		}
		<-timeAfterSweep()
	}
	if got, err := readChecked(j, 0); err != nil || got != 1601 {
		t.Fatalf("read %d, %v", got, err)
	}
}

func timeAfterSweep() <-chan time.Time { return time.After(sweepInterval) }
