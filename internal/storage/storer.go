package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/journal"
)

// Storer feeds a Backend from a Journal: it reads acknowledged records in
// sequence order from the backend's applied sequence + 1, applies them in
// batches, and truncates the journal below what the backend holds durably.
// It is the "storer" of DESIGN.md and MemoryDB's off-path snapshotting: it
// runs on its own goroutine, never touches the memory tier, never copies
// the store, and holds back to a bounded share of one core, so serving
// never waits on it. An Apply error is retried with capped exponential
// backoff and jitter, forever, on the same batch: nothing is dropped or
// reordered, and because Apply is idempotent a partial failure is harmless.
// (The 2013 memcached-on-DynamoDB prototype lost 88% of write-behind sets
// to throttling; here the journal absorbs the backlog instead.)
//
// Batches are cut by size and by time: a backlog is applied in full
// batches, and once the storer has caught up it lets the next batch gather
// for GatherDelay (storer_wait.go), because each Apply costs a backend
// commit whatever its size, and that CPU is taken from serving. Nobody
// waits for that delay: a WaitApplied caller (write-through replies,
// read-through misses) makes the storer apply at once.
type Storer struct {
	j      journal.Journal
	b      Backend
	opts   StorerOptions
	errLog logEvery // apply and flush failures

	// waiting counts WaitApplied callers that are blocked; each one also
	// sends on kick (capacity 1), which wakes a gathering or idle storer.
	waiting atomic.Int32
	kick    chan struct{}
	// waitSeq is the highest sequence a WaitApplied caller has waited for;
	// batchLimit cuts a batch there while someone waits.
	waitSeq atomic.Uint64

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when applied advances or Run ends
	applied  uint64
	durable  uint64
	done     bool
	runErr   error
	samples  []sample // (journal seq, first seen) for the age of the backlog
	posKnown bool     // pos, where the record after applied starts, is known (storer_backlog.go)
	pos      journal.Position
	st       StorerStats
}

// StorerOptions configure a Storer. Zero values take the defaults.
type StorerOptions struct {
	MaxBatchRecords int // records per Apply; default 4096
	MaxBatchBytes   int // bytes per Apply; default 4 MiB
	// GatherDelay is how long a batch that is not full may gather once
	// the storer has caught up: a partial batch is applied GatherDelay
	// after the storer first reached the journal's end since its last
	// Apply. A steady trickle of writes is then applied in about one
	// batch per GatherDelay instead of one per record, and a write after
	// a quiet spell longer than that is applied at once. A full batch, a
	// blocked WaitApplied caller and a cancelled ctx never wait for it.
	// While records are appended but not yet acknowledged, the storer
	// polls DurableSeq with this period instead of waiting in
	// WaitDurable. Default 2 ms; negative disables both (each batch is
	// applied as soon as it is read).
	GatherDelay time.Duration
	// A backend that is not durable by itself (Flusher: Pebble without its
	// WAL) is flushed once FlushBytes have been applied since the last
	// flush, or FlushInterval after an unflushed apply. Truncation follows
	// each flush. Defaults 64 MiB and 10 s.
	FlushBytes    int64
	FlushInterval time.Duration
	// CPUShare bounds the fraction of one core the apply loop uses: after
	// a batch that took w, it sleeps w·(1−share)/share. Default 0.5; 1
	// disables pacing. Pebble's compactions are bounded separately (one
	// at a time).
	CPUShare  float64
	RetryBase time.Duration // first backoff after a failed Apply; default 10 ms
	RetryMax  time.Duration // backoff cap; default 5 s
	// AppliedHint, when set, is the backend's applied sequence as the
	// caller last read it. Run measures the backlog from there until it
	// has read the sequence itself, which takes a backend call that may
	// fail for as long as the backend is down: meanwhile the backlog must
	// not go unmeasured, or --backlog-limit would not hold.
	AppliedHint *uint64
	// CallTimeout is the deadline of each Apply and AppliedSeq call; one
	// that passes it is retried, counted as a "timeout". 0: none (Pebble,
	// whose calls do not block on a network).
	CallTimeout time.Duration
	Logf        func(format string, args ...any)
	// Progress, when set, is called after every applied batch.
	Progress func(Lag)
}

func (o *StorerOptions) setDefaults() {
	if o.MaxBatchRecords <= 0 {
		o.MaxBatchRecords = 4096
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.GatherDelay == 0 {
		o.GatherDelay = DefaultGatherDelay
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = 64 << 20
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 10 * time.Second
	}
	if o.CPUShare <= 0 || o.CPUShare > 1 {
		o.CPUShare = 0.5
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 10 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Flusher is a backend whose Apply is not durable by itself. The storer
// calls Flush and truncates the journal only below DurableAppliedSeq.
// Backends without it are taken as durable once Apply returns.
type Flusher interface {
	Flush() error
	DurableAppliedSeq() uint64
}

// ErrorKinder lets a backend name the kind of an Apply error ("throttled",
// "timeout", …) for the retry metric.
type ErrorKinder interface{ ErrorKind() string }

// StorerStats are cumulative counters.
type StorerStats struct {
	Batches         uint64
	Records         uint64 // records handed to Apply
	Flushes         uint64
	Truncations     uint64
	TruncateErrors  uint64
	Retries         map[string]uint64 // failed Applies by error kind
	LastApplyError  string
	LastFlushError  string
	LastTruncateErr string
}

// Lag is the storer's position and backlog.
type Lag struct {
	AppliedSeq        uint64        // applied to the backend
	DurableAppliedSeq uint64        // survives a crash; the journal is truncated below it
	JournalSeq        uint64        // acknowledged in the journal
	BacklogRecords    uint64        // JournalSeq − AppliedSeq
	BacklogBytes      int64         // journal bytes after the last applied record; -1 when unknown (storer_backlog.go)
	OldestUnapplied   time.Duration // age of the oldest acknowledged, unapplied write (sampled)
	JournalBytes      int64         // journal segment bytes on disk; -1 when unknown
	Stats             StorerStats
}

type sample struct {
	seq uint64
	t   time.Time
}

// DefaultGatherDelay is StorerOptions.GatherDelay's default. At 2 ms a
// write-behind backend lags the journal by 2 ms more at most, and the
// storer makes at most about 500 partial batches a second however the
// writes trickle in.
const DefaultGatherDelay = 2 * time.Millisecond

// NewStorer returns a storer of j into b; Run starts it.
func NewStorer(j journal.Journal, b Backend, opts StorerOptions) *Storer {
	opts.setDefaults()
	return &Storer{j: j, b: b, opts: opts, changed: make(chan struct{}), kick: make(chan struct{}, 1),
		st: StorerStats{Retries: map[string]uint64{}}}
}

// ErrStopped is returned by WaitApplied once Run has returned.
var ErrStopped = errors.New("storage: storer stopped")

// WaitApplied blocks until the backend has applied seq (write-through), the
// storer stops, or ctx is done. While it waits, the storer applies what it reads at
// once instead of letting batches gather.
func (s *Storer) WaitApplied(ctx context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	counted := false
	for s.applied < seq {
		if !counted {
			counted = true
			atomicMaxUint64(&s.waitSeq, seq)
			s.waiting.Add(1)
			defer s.waiting.Add(-1)
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		if s.done {
			if s.runErr != nil {
				return fmt.Errorf("%w: %w", ErrStopped, s.runErr)
			}
			return ErrStopped
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			return ctx.Err()
		}
		s.mu.Lock()
	}
	return nil
}

// batchLimit is how many records the next batch may take: MaxBatchRecords,
// or, while a WaitApplied caller waits (a write-through reply, a
// read-through miss), no more than it takes to reach the highest sequence
// waited for. Draining a backlog, a full batch for a database can take
// seconds; the waiter's answer should not wait for the part of it beyond
// its own sequence. (Records have consecutive sequences; where they do
// not, the batch merely ends early.) Run calls it: applied is its own.
func (s *Storer) batchLimit() int {
	n := s.opts.MaxBatchRecords
	if w := s.waitSeq.Load(); s.waiting.Load() > 0 && w > s.applied && w-s.applied < uint64(n) {
		n = int(w - s.applied)
	}
	return n
}

// atomicMaxUint64 raises v to x if x is larger.
func atomicMaxUint64(v *atomic.Uint64, x uint64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// Lag reports the storer's position, backlog and counters.
func (s *Storer) Lag() Lag {
	if f, ok := s.j.(interface{ Refresh() }); ok {
		// A journal another process writes (DirJournal) sees new records
		// only when it looks; a storer retrying a batch does not look.
		f.Refresh()
	}
	jseq := s.j.DurableSeq()
	now := time.Now()
	s.mu.Lock()
	s.observe(jseq, now)
	l := Lag{AppliedSeq: s.applied, DurableAppliedSeq: s.durable, JournalSeq: jseq, JournalBytes: -1}
	pos, posKnown := s.pos, s.posKnown
	if jseq > s.applied {
		l.BacklogRecords = jseq - s.applied
		for _, sm := range s.samples {
			if sm.seq > s.applied {
				l.OldestUnapplied = now.Sub(sm.t)
				break
			}
		}
	}
	l.Stats = s.st
	l.Stats.Retries = make(map[string]uint64, len(s.st.Retries))
	for k, v := range s.st.Retries {
		l.Stats.Retries[k] = v
	}
	s.mu.Unlock()
	l.BacklogBytes = s.backlogBytes(l.BacklogRecords, pos, posKnown)
	switch j := s.j.(type) {
	case interface{ Stats() journal.Stats }:
		l.JournalBytes = j.Stats().SizeOnDisk
	case interface{ DiskBytes() int64 }:
		l.JournalBytes = j.DiskBytes()
	}
	return l
}

// observe records that the journal was acknowledged up to seq at t. The
// samples are what the backlog's age is read from; s.mu is held.
func (s *Storer) observe(seq uint64, t time.Time) {
	n := len(s.samples)
	i := 0
	for i < n && s.samples[i].seq <= s.applied {
		i++
	}
	if i > 0 {
		s.samples = append(s.samples[:0], s.samples[i:]...)
		n = len(s.samples)
	}
	switch {
	case seq <= s.applied || (n > 0 && seq <= s.samples[n-1].seq):
	case n > 0 && (n >= 1024 || t.Sub(s.samples[n-1].t) < 10*time.Millisecond):
		// Coalesce into the last sample: newer records then look older
		// than they are, never younger.
		s.samples[n-1].seq = seq
	default:
		s.samples = append(s.samples, sample{seq, t})
	}
}

// Run applies the journal until ctx is done or the journal is closed, and
// returns why it stopped (nil for a closed journal or a cancelled ctx).
func (s *Storer) Run(ctx context.Context) (err error) {
	defer func() {
		s.mu.Lock()
		s.done, s.runErr = true, err
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}()
	if h := s.opts.AppliedHint; h != nil && *h <= s.j.DurableSeq() {
		if rd, err := s.j.ReadFrom(*h + 1); err == nil {
			s.mu.Lock()
			s.applied = *h
			s.mu.Unlock()
			s.position(rd)
			rd.Close()
		}
	}
	var applied uint64
	err = s.call(ctx, func() string { return "read the applied sequence" }, func(ctx context.Context) (err error) {
		applied, err = s.b.AppliedSeq(ctx)
		return err
	})
	if err != nil {
		return nil // ctx is done
	}
	durable := applied
	if f, ok := s.b.(Flusher); ok {
		durable = f.DurableAppliedSeq()
	}
	if jseq := s.j.DurableSeq(); applied > jseq {
		return fmt.Errorf("storage: storer: the backend has applied up to %d but the journal ends at %d: "+
			"the journal was lost or replaced, refusing to apply new sequences below the backend's", applied, jseq)
	}
	s.mu.Lock()
	s.applied, s.durable = applied, durable
	s.mu.Unlock()
	rd, err := s.j.ReadFrom(applied + 1)
	if err != nil {
		return fmt.Errorf("storage: storer: read the journal from %d: %w", applied+1, err)
	}
	defer rd.Close()
	s.position(rd)
	s.truncate(durable)

	br := &batchReader{rd: rd, maxRecords: s.opts.MaxBatchRecords, maxBytes: s.opts.MaxBatchBytes}
	w := newFollower(s.j)
	defer w.stop()
	var (
		unflushed   int64
		flushBy     time.Time // when unflushed work must be flushed
		idleSince   time.Time // when the storer first reached the journal's end since its last apply
		lastPersist = time.Now()
		retryFlush  time.Time
	)
	for {
		if err := ctx.Err(); err != nil {
			return s.finish(unflushed)
		}
		start := time.Now()
		br.reset()
		br.maxRecords = s.batchLimit()
		atEnd, err := br.fill()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.observe(s.j.DurableSeq(), start)
		s.mu.Unlock()
		if len(br.batch) == 0 {
			if unflushed > 0 && !time.Now().Before(flushBy) {
				unflushed, flushBy = s.flushAt(unflushed)
			}
			if idleSince.IsZero() {
				idleSince = start
			}
			// Caught up: wait for the next record, or the flush deadline.
			var wake time.Time
			if unflushed > 0 {
				wake = flushBy
			}
			if !s.awaitRecords(ctx, w, s.applied+1, wake) {
				return s.finish(unflushed)
			}
			continue
		}
		var gathered time.Duration // waiting, not work, for the pacing
		if atEnd && s.opts.GatherDelay > 0 && s.waiting.Load() == 0 {
			if idleSince.IsZero() {
				idleSince = time.Now()
			}
			t := time.Now()
			ok, err := s.gather(ctx, w, br, idleSince.Add(s.opts.GatherDelay))
			if err != nil {
				return err
			}
			if !ok {
				return s.finish(unflushed)
			}
			gathered = time.Since(t)
		}
		idleSince = time.Time{}
		batch, bytes := br.batch, br.bytes
		if err := s.apply(ctx, batch); err != nil {
			return s.finish(unflushed) // only ctx ends the retries
		}
		last := batch[len(batch)-1].Seq
		pos, posKnown := readerPosition(rd) // the reader stops right after the batch
		s.mu.Lock()
		s.applied = last
		s.pos, s.posKnown = pos, posKnown
		s.st.Batches++
		s.st.Records += uint64(len(batch))
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if unflushed == 0 {
			flushBy = time.Now().Add(s.opts.FlushInterval)
		}
		unflushed += int64(bytes)
		if now := time.Now(); !now.Before(flushBy) || (unflushed >= s.opts.FlushBytes && !now.Before(retryFlush)) {
			unflushed, flushBy = s.flushAt(unflushed)
			retryFlush = flushBy // after a failure, not before RetryMax
		}
		if _, ok := s.b.(Flusher); !ok {
			// Durable on Apply; truncate at most once a second so that
			// small batches do not each list the journal's files.
			if time.Since(lastPersist) >= time.Second {
				s.flush()
				lastPersist = time.Now()
			}
		}
		if s.opts.Progress != nil {
			s.opts.Progress(s.Lag())
		}
		s.pace(ctx, time.Since(start)-gathered)
	}
}

// apply applies one batch, retrying until it succeeds or ctx is done.
func (s *Storer) apply(ctx context.Context, batch []journal.Record) error {
	what := func() string { return fmt.Sprintf("apply %d..%d", batch[0].Seq, batch[len(batch)-1].Seq) }
	return s.call(ctx, what, func(ctx context.Context) error { return s.b.Apply(ctx, batch) })
}

// call runs a backend call with the CallTimeout deadline, retrying it with
// capped, jittered exponential backoff until it succeeds or ctx is done.
// A database that stops answering (frozen, or a network blackhole) thus
// shows as counted, logged timeouts rather than a silent stall.
func (s *Storer) call(ctx context.Context, what func() string, f func(context.Context) error) error {
	delay := s.opts.RetryBase
	retries := 0
	for {
		callCtx, cancel := ctx, context.CancelFunc(func() {})
		if s.opts.CallTimeout > 0 {
			callCtx, cancel = context.WithTimeout(ctx, s.opts.CallTimeout)
		}
		err := f(callCtx)
		cancel()
		if err == nil {
			if retries > 0 {
				s.opts.Logf("storer: %s: done after %d retries", what(), retries)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		retries++
		kind := errorKind(err)
		s.mu.Lock()
		s.st.Retries[kind]++
		s.st.LastApplyError = err.Error()
		s.mu.Unlock()
		if ok, n := s.errLog.allow(time.Now()); ok {
			s.opts.Logf("storer: %s: %v (retrying in about %v%s)", what(), err, delay, suppressed(n))
		}
		// Full jitter in [delay/2, delay): retries of many storers against
		// one throttled database spread out instead of arriving together.
		d := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		if !sleepCtx(ctx, d) {
			return ctx.Err()
		}
		delay = min(delay*2, s.opts.RetryMax)
	}
}

func errorKind(err error) string {
	var k ErrorKinder
	switch {
	case errors.As(err, &k):
		return k.ErrorKind()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// flushAt flushes, and after a failure returns the bytes still unflushed
// and when to try again.
func (s *Storer) flushAt(unflushed int64) (int64, time.Time) {
	if s.flush() {
		return 0, time.Time{}
	}
	return unflushed, time.Now().Add(s.opts.RetryMax)
}

// flush makes the backend durable up to what it applied and truncates the
// journal below that, and reports whether it could.
func (s *Storer) flush() bool {
	durable := s.applied
	if f, ok := s.b.(Flusher); ok {
		if err := f.Flush(); err != nil {
			s.mu.Lock()
			s.st.LastFlushError = err.Error()
			s.mu.Unlock()
			if ok, n := s.errLog.allow(time.Now()); ok {
				s.opts.Logf("storer: flush: %v%s", err, suppressed(n))
			}
			return false
		}
		durable = f.DurableAppliedSeq()
	}
	s.mu.Lock()
	s.durable = durable
	s.st.Flushes++
	s.mu.Unlock()
	s.truncate(durable)
	return true
}

func (s *Storer) truncate(durable uint64) {
	if durable == 0 {
		return
	}
	err := s.j.TruncateBelow(durable + 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.st.TruncateErrors++
		s.st.LastTruncateErr = err.Error()
		s.opts.Logf("storer: %v", err)
		return
	}
	s.st.Truncations++
}

// finish flushes what was applied, so that a clean stop leaves the journal
// short and the backend durable.
func (s *Storer) finish(unflushed int64) error {
	if unflushed > 0 {
		s.flush()
	}
	return nil
}

// pace sleeps so that the loop uses at most CPUShare of a core.
func (s *Storer) pace(ctx context.Context, work time.Duration) {
	if s.opts.CPUShare >= 1 {
		return
	}
	d := time.Duration(float64(work) * (1 - s.opts.CPUShare) / s.opts.CPUShare)
	if d >= 100*time.Microsecond {
		sleepCtx(ctx, d)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// arena holds a batch's keys and values in a few large chunks, reused from
// batch to batch, so that reading a batch does not allocate per record.
type arena struct {
	chunks [][]byte
	used   int // chunks in use; the last one may have room
}

func (a *arena) copy(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if a.used > 0 {
		c := a.chunks[a.used-1]
		if cap(c)-len(c) >= len(b) {
			n := len(c)
			c = append(c, b...)
			a.chunks[a.used-1] = c
			return c[n:len(c):len(c)]
		}
	}
	if a.used < len(a.chunks) && cap(a.chunks[a.used]) >= len(b) {
		a.chunks[a.used] = append(a.chunks[a.used][:0], b...)
	} else {
		c := make([]byte, 0, max(len(b), 1<<20))
		c = append(c, b...)
		if a.used < len(a.chunks) {
			a.chunks[a.used] = c
		} else {
			a.chunks = append(a.chunks, c)
		}
	}
	a.used++
	c := a.chunks[a.used-1]
	return c[:len(b):len(b)]
}
