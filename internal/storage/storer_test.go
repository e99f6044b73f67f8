package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"petrel/internal/journal"
)

func openTestJournal(t *testing.T, dir string, segSize int64) *journal.Local {
	t.Helper()
	j, err := journal.Open(journal.Options{Dir: dir, SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// writer appends random sets, deletes and touches over a few keys and
// keeps the model: key → "value@seq" of the last live write.
type writer struct {
	t     *testing.T
	j     journal.Journal
	rng   *rand.Rand
	model map[string]string
	last  uint64
}

func newWriter(t *testing.T, j journal.Journal, seed uint64) *writer {
	return &writer{t: t, j: j, rng: rand.New(rand.NewPCG(seed, 7)), model: map[string]string{}}
}

func (w *writer) write(n int) uint64 {
	w.t.Helper()
	for range n {
		key := fmt.Sprintf("key-%d", w.rng.IntN(50))
		var r journal.Record
		switch x := w.rng.IntN(10); {
		case x < 7:
			r = journal.Record{Type: journal.TypeSet, Key: []byte(key), Value: []byte(strings.Repeat("v", w.rng.IntN(200)))}
		case x < 9:
			r = journal.Record{Type: journal.TypeDelete, Key: []byte(key)}
		default:
			r = journal.Record{Type: journal.TypeTouch, Key: []byte(key), Exptime: testNow + 1000}
		}
		seq, err := w.j.Append(&r)
		if err != nil {
			w.t.Fatal(err)
		}
		switch r.Type {
		case journal.TypeSet:
			w.model[key] = fmt.Sprintf("%s@%d", r.Value, seq)
		case journal.TypeDelete:
			delete(w.model, key)
		case journal.TypeTouch:
			if v, ok := w.model[key]; ok {
				w.model[key] = v[:strings.LastIndexByte(v, '@')] + fmt.Sprintf("@%d", seq)
			}
		}
		w.last = seq
	}
	if err := w.j.WaitDurable(w.last); err != nil {
		w.t.Fatal(err)
	}
	return w.last
}

// startStorer runs s until the test's cleanup or stop.
func startStorer(t *testing.T, s *Storer) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestStorerEndToEnd(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, filepath.Join(dir, "journal"), 8<<10)
	defer j.Close()
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	progress := make(chan Lag, 1000)
	s := NewStorer(j, p, StorerOptions{
		FlushBytes: 1, // flush and truncate after every batch
		CPUShare:   1,
		Progress: func(l Lag) {
			select {
			case progress <- l:
			default:
			}
		},
	})
	stop := startStorer(t, s)
	w := newWriter(t, j, 1)
	var written int64
	for round := range 20 {
		before := j.Stats().Bytes
		last := w.write(300)
		written += int64(j.Stats().Bytes - before)
		if err := s.WaitApplied(context.Background(), last); err != nil {
			t.Fatal(err)
		}
		// The progress report after the batch that reached last comes
		// after its flush and truncation.
		var l Lag
		for l.AppliedSeq < last {
			l = <-progress
		}
		if l.DurableAppliedSeq != last || l.BacklogRecords != 0 {
			t.Fatalf("round %d: %+v, want everything applied and durable at %d", round, l, last)
		}
		if st := j.Stats(); st.Segments > 2 || l.JournalBytes != st.SizeOnDisk {
			t.Fatalf("round %d: journal holds %d segments, %d bytes (metric %d); truncation is not keeping it short",
				round, st.Segments, st.SizeOnDisk, l.JournalBytes)
		}
	}
	if l := s.Lag(); l.JournalBytes >= written/4 {
		t.Errorf("journal on disk %d bytes after writing %d: not truncated", l.JournalBytes, written)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(contents(t, p, testNow)), fmt.Sprint(w.model); got != want {
		t.Errorf("backend differs from the last write per key:\n got %s\nwant %s", got, want)
	}

	// A restart resumes from the backend's applied sequence.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPebble(t, filepath.Join(dir, "pebble"))
	defer p.Close()
	last := w.write(500)
	s = NewStorer(j, p, StorerOptions{})
	stop = startStorer(t, s)
	if err := s.WaitApplied(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(contents(t, p, testNow)), fmt.Sprint(w.model); got != want {
		t.Errorf("after resuming:\n got %s\nwant %s", got, want)
	}
	if p.DurableAppliedSeq() != last {
		t.Errorf("a clean stop left durable at %d, want %d", p.DurableAppliedSeq(), last)
	}
}

// flakyBackend is a test-only wrapper that fails Apply on a pattern and
// records the sequences of the batches that succeeded.
type flakyBackend struct {
	Backend
	mu      sync.Mutex
	calls   int
	failing func(call int) error
	seqs    []uint64
}

type throttled struct{}

func (throttled) Error() string     { return "throttled" }
func (throttled) ErrorKind() string { return "throttled" }

func (f *flakyBackend) Apply(ctx context.Context, recs []journal.Record) error {
	f.mu.Lock()
	f.calls++
	err := f.failing(f.calls)
	f.mu.Unlock()
	if err != nil {
		if f.calls%2 == 0 {
			// Half the failures apply part of the batch first, as a
			// database that times out after committing some would.
			f.Backend.Apply(ctx, recs[:len(recs)/2])
		}
		return err
	}
	if err := f.Backend.Apply(ctx, recs); err != nil {
		return err
	}
	f.mu.Lock()
	for _, r := range recs {
		f.seqs = append(f.seqs, r.Seq)
	}
	f.mu.Unlock()
	return nil
}

func TestStorerRetriesWithoutLossOrReordering(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, filepath.Join(dir, "journal"), 16<<10)
	defer j.Close()
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	defer p.Close()
	fb := &flakyBackend{Backend: p, failing: func(call int) error {
		switch {
		case call%3 == 0:
			return throttled{}
		case call%7 == 0:
			return fmt.Errorf("apply: %w", context.DeadlineExceeded)
		case call%11 == 0:
			return errors.New("connection reset")
		}
		return nil
	}}
	s := NewStorer(j, fb, StorerOptions{MaxBatchRecords: 37, RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond, CPUShare: 1})
	stop := startStorer(t, s)
	w := newWriter(t, j, 2)
	var last uint64
	for range 10 {
		last = w.write(200)
	}
	if err := s.WaitApplied(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i, seq := range fb.seqs {
		if seq != uint64(i+1) {
			t.Fatalf("record %d applied as sequence %d: lost or reordered", i+1, seq)
		}
	}
	if uint64(len(fb.seqs)) != last {
		t.Fatalf("%d records applied, want %d", len(fb.seqs), last)
	}
	r := s.Lag().Stats.Retries
	if r["throttled"] == 0 || r["timeout"] == 0 || r["error"] == 0 {
		t.Errorf("retries by kind = %v, want all three kinds counted", r)
	}
	if got, want := fmt.Sprint(contents(t, p, testNow)), fmt.Sprint(w.model); got != want {
		t.Errorf("backend differs from the model:\n got %s\nwant %s", got, want)
	}
}

func TestStorerRefusesBackendAheadOfJournal(t *testing.T) {
	dir := t.TempDir()
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	defer p.Close()
	mustApply(t, p, set(1, "a", "1"), set(2, "b", "2"))
	j := openTestJournal(t, filepath.Join(dir, "journal"), 0) // empty: a lost journal
	defer j.Close()
	err := NewStorer(j, p, StorerOptions{}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "journal was lost") {
		t.Errorf("Run = %v, want a refusal", err)
	}
}

func TestStorerWaitAppliedAfterStop(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, 0)
	defer j.Close()
	p := openTestPebble(t, t.TempDir())
	defer p.Close()
	s := NewStorer(j, p, StorerOptions{})
	stop := startStorer(t, s)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitApplied(context.Background(), 1); !errors.Is(err, ErrStopped) {
		t.Errorf("WaitApplied after stop = %v, want ErrStopped", err)
	}
}

func TestArena(t *testing.T) {
	var a arena
	f := func(round int) {
		a.used = 0
		var got [][]byte
		var want []string
		for i := range 300 {
			s := strings.Repeat(string(rune('a'+i%26)), (i*7919+round)%5000)
			got = append(got, a.copy([]byte(s)))
			want = append(want, s)
		}
		for i := range got {
			if string(got[i]) != want[i] {
				t.Fatalf("round %d: copy %d corrupted", round, i)
			}
		}
	}
	for round := range 3 {
		f(round)
	}
}

// followedJournal opens a journal of segSize segments in a new data
// directory, writes n records to it, and opens a DirJournal over its files,
// as `petrel storer` follows a server's.
func followedJournal(t *testing.T, segSize int64, seed uint64, n int) (string, *journal.Local, *writer, *DirJournal) {
	t.Helper()
	dataDir := t.TempDir()
	j := openTestJournal(t, JournalDir(dataDir), segSize)
	w := newWriter(t, j, seed)
	w.write(n)
	d, err := OpenDirJournal(dataDir, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return dataDir, j, w, d
}

// TestStorerFollowsDirJournal runs the storer as `petrel storer` does, over
// journal files another writer keeps appending to.
func TestStorerFollowsDirJournal(t *testing.T) {
	dataDir, j, w, d := followedJournal(t, 4<<10, 3, 100)
	defer j.Close()
	defer d.Close()
	p := openTestPebble(t, PebbleDir(dataDir))
	defer p.Close()
	s := NewStorer(d, p, StorerOptions{FlushBytes: 1, CPUShare: 1})
	stop := startStorer(t, s)
	var last uint64
	for range 10 {
		last = w.write(150) // rolls segments under the follower
	}
	if err := s.WaitApplied(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(contents(t, p, testNow)), fmt.Sprint(w.model); got != want {
		t.Errorf("backend differs from the model:\n got %s\nwant %s", got, want)
	}
	mark, err := ReadAppliedMark(dataDir)
	if err != nil || mark != last {
		t.Errorf("applied mark = %d, %v; want %d", mark, err, last)
	}
	if st := j.Stats(); st.Segments < 3 {
		t.Errorf("the writer's journal has %d segments; the test wants several", st.Segments)
	}
}

func TestLocks(t *testing.T) {
	dir := t.TempDir()
	l, err := LockStorer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockStorer(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("second LockStorer = %v, want ErrLocked", err)
	}
	jl, err := LockJournal(dir)
	if err != nil {
		t.Errorf("LockJournal beside the storer lock: %v", err)
	}
	jl.Unlock()
	l.Unlock()
	l, err = LockStorer(dir)
	if err != nil {
		t.Errorf("LockStorer after Unlock: %v", err)
	}
	l.Unlock()
}

// failingFlush is a test-only Pebble wrapper whose Flush fails until healed.
type failingFlush struct {
	*Pebble
	mu     sync.Mutex
	broken bool
	tries  int
}

func (f *failingFlush) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.broken {
		return errors.New("disk full")
	}
	return f.Pebble.Flush()
}

// A failing flush holds truncation back (the journal keeps every record
// Pebble may lose) without stopping the applies, and recovers.
func TestStorerFlushFailure(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, filepath.Join(dir, "journal"), 4<<10)
	defer j.Close()
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	defer p.Close()
	ff := &failingFlush{Pebble: p, broken: true}
	s := NewStorer(j, ff, StorerOptions{FlushBytes: 1, CPUShare: 1, RetryMax: time.Millisecond})
	stop := startStorer(t, s)
	w := newWriter(t, j, 10)
	last := w.write(300)
	if err := s.WaitApplied(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	// The flush follows the apply that WaitApplied saw: wait for it.
	l := s.Lag()
	for deadline := time.Now().Add(10 * time.Second); l.Stats.LastFlushError == "" && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		l = s.Lag()
	}
	if l.DurableAppliedSeq != 0 || j.Stats().FirstSeq != 1 || l.Stats.LastFlushError == "" {
		t.Errorf("with flushes failing: durable %d, journal from %d, flush error %q; want 0, 1, an error",
			l.DurableAppliedSeq, j.Stats().FirstSeq, l.Stats.LastFlushError)
	}
	ff.mu.Lock()
	ff.broken = false
	ff.mu.Unlock()
	if err := stop(); err != nil { // a clean stop flushes
		t.Fatal(err)
	}
	if l := s.Lag(); l.DurableAppliedSeq != last || j.Stats().Segments > 2 {
		t.Errorf("after healing: durable %d (want %d), %d journal segments", l.DurableAppliedSeq, last, j.Stats().Segments)
	}
	if got, want := fmt.Sprint(contents(t, p, testNow)), fmt.Sprint(w.model); got != want {
		t.Errorf("backend differs from the model:\n got %s\nwant %s", got, want)
	}
}

// newGatherTest opens a journal and Pebble in a temporary directory and a
// storer over them with the given gather delay, already running. With
// opaque, the storer sees the journal through the Journal interface only,
// so it cannot tell appended records from none and never polls.
func newGatherTest(t *testing.T, gather time.Duration, opaque bool) (*journal.Local, *Storer, func() error) {
	t.Helper()
	dir := t.TempDir()
	j := openTestJournal(t, filepath.Join(dir, "journal"), 0)
	t.Cleanup(func() { j.Close() })
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	t.Cleanup(func() { p.Close() })
	var sj journal.Journal = j
	if opaque {
		sj = struct{ journal.Journal }{j}
	}
	s := NewStorer(sj, p, StorerOptions{GatherDelay: gather, CPUShare: 1})
	stop := startStorer(t, s)
	time.Sleep(20 * time.Millisecond) // the storer has caught up and waits in WaitDurable
	return j, s, stop
}

// Records arriving one at a time are applied in a few batches, not one
// batch each: back to back (the storer polls while records are pending,
// or gathers) and with pauses through a journal that shows no pending
// records (the storer waits in WaitDurable, then gathers).
func TestStorerGathersBatches(t *testing.T) {
	f := func(n int, pause time.Duration, opaque bool) {
		t.Helper()
		j, s, stop := newGatherTest(t, 200*time.Millisecond, opaque)
		w := newWriter(t, j, 4)
		var last uint64
		for range n {
			last = w.write(1) // appended and acknowledged one at a time
			time.Sleep(pause)
		}
		if err := s.WaitApplied(context.Background(), last); err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		st := s.Lag().Stats
		if st.Records != last || st.Batches*10 > st.Records {
			t.Errorf("pause %v, opaque %v: %d records applied in %d batches; want all %d in batches of 10 or more",
				pause, opaque, st.Records, st.Batches, last)
		}
	}
	f(300, 0, false)
	f(100, time.Millisecond, true)
}

// A WaitApplied caller (a write-through reply) never waits for the gather
// delay, whether it arrives before the record, after it, or while a batch
// is gathering. The delay is long so that the bound is far from the noise.
func TestStorerWaitAppliedSkipsGather(t *testing.T) {
	const gather = 5 * time.Second
	j, s, _ := newGatherTest(t, gather, false)
	w := newWriter(t, j, 5)
	f := func(name string, write func() uint64) {
		t.Helper()
		start := time.Now()
		seq := write()
		if err := s.WaitApplied(context.Background(), seq); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := time.Since(start); d > gather/10 {
			t.Errorf("%s: WaitApplied took %v with a gather delay of %v", name, d, gather)
		}
	}
	f("after the record", func() uint64 { return w.write(1) })
	f("during a gather", func() uint64 {
		w.write(1)
		time.Sleep(20 * time.Millisecond) // the storer read it and is gathering
		return w.write(1)
	})
	f("before acknowledgement", func() uint64 {
		r := journal.Record{Type: journal.TypeSet, Key: []byte("k"), Value: []byte("v")}
		seq, err := j.Append(&r) // nobody but the storer waits on it
		if err != nil {
			t.Fatal(err)
		}
		return seq
	})
	f("before the record", func() uint64 {
		next := j.LastSeq() + 1
		done := make(chan error, 1)
		go func() { done <- s.WaitApplied(context.Background(), next) }()
		for s.waiting.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		w.write(1)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return next
	})
	if st := s.Lag().Stats; st.Records != j.LastSeq() {
		t.Errorf("%d records applied, want %d", st.Records, j.LastSeq())
	}
}

// Neither a cancelled ctx (while a batch gathers) nor a closed journal
// (while the storer waits for records) waits for the gather delay.
func TestStorerStopsPromptly(t *testing.T) {
	const gather = 5 * time.Second
	f := func(name string, stopIt func(j *journal.Local, s *Storer, cancel func())) {
		t.Helper()
		dir := t.TempDir()
		j := openTestJournal(t, filepath.Join(dir, "journal"), 0)
		defer j.Close()
		p := openTestPebble(t, filepath.Join(dir, "pebble"))
		defer p.Close()
		s := NewStorer(j, p, StorerOptions{GatherDelay: gather, CPUShare: 1})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- s.Run(ctx) }()
		time.Sleep(20 * time.Millisecond) // the storer waits in WaitDurable
		w := newWriter(t, j, 6)
		w.write(1)
		time.Sleep(20 * time.Millisecond) // the storer read it and is gathering
		start := time.Now()
		stopIt(j, s, cancel)
		if err := <-errc; err != nil {
			t.Errorf("%s: Run returned %v", name, err)
		}
		if d := time.Since(start); d > gather/10 {
			t.Errorf("%s: the storer took %v to stop with a gather delay of %v", name, d, gather)
		}
		if err := s.WaitApplied(context.Background(), w.last+1); !errors.Is(err, ErrStopped) {
			t.Errorf("%s: WaitApplied after the stop = %v, want ErrStopped", name, err)
		}
	}
	f("ctx cancelled while gathering", func(_ *journal.Local, _ *Storer, cancel func()) { cancel() })
	f("journal closed while waiting", func(j *journal.Local, s *Storer, _ func()) {
		// WaitApplied ends the gather; the storer then waits for the
		// next record in WaitDurable.
		if err := s.WaitApplied(context.Background(), j.LastSeq()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// batchSizes is a test-only wrapper that records the size of each batch.
type batchSizes struct {
	Backend
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) Apply(ctx context.Context, recs []journal.Record) error {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(recs))
	b.mu.Unlock()
	return b.Backend.Apply(ctx, recs)
}

// A WaitApplied caller behind a backlog gets a batch cut at its sequence,
// not a full one: with a database, the rest of a full batch could take
// seconds to apply.
func TestStorerCutsBatchForWaiter(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, filepath.Join(dir, "journal"), 0)
	t.Cleanup(func() { j.Close() })
	newWriter(t, j, 6).write(3000) // the backlog
	p := openTestPebble(t, filepath.Join(dir, "pebble"))
	t.Cleanup(func() { p.Close() })
	b := &batchSizes{Backend: p}
	s := NewStorer(j, b, StorerOptions{MaxBatchRecords: 1000, CPUShare: 1})
	done := make(chan error, 1)
	go func() { done <- s.WaitApplied(context.Background(), 25) }()
	for s.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stop := startStorer(t, s)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.WaitApplied(context.Background(), 3000); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	total := 0
	for _, n := range b.sizes {
		total += n
	}
	if len(b.sizes) == 0 || b.sizes[0] != 25 || total != 3000 {
		t.Errorf("batches %v: want the first of 25 records (the waiter's), 3000 in all", b.sizes)
	}
}

// TestLogEvery: the first error is logged, the next ones within the
// interval are counted, and the next line logged says how many.
func TestLogEvery(t *testing.T) {
	var l logEvery
	t0 := time.Unix(1000, 0)
	f := func(at time.Duration, wantOK bool, wantHidden int) {
		t.Helper()
		if ok, n := l.allow(t0.Add(at)); ok != wantOK || n != wantHidden {
			t.Errorf("at %v: %v, %d; want %v, %d", at, ok, n, wantOK, wantHidden)
		}
	}
	f(0, true, 0)
	f(5*time.Second, false, 0)
	f(10*time.Second, false, 0)
	f(errorLogEvery, true, 2)
	f(errorLogEvery+time.Second, false, 0)
}
