package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"petrel/internal/journal"
)

// How the storer waits. Each Apply costs a backend commit (a Pebble batch
// commit, a database round trip) whatever its size, and on a small machine
// that CPU is taken from serving: a storer that applied records as they
// trickled in made one Pebble commit per record at one connection, and a
// goroutine and a timer per wait besides. So once the storer has caught up
// the next batch gathers for GatherDelay, and the waits themselves cost
// little: one long-lived goroutine blocks in WaitDurable for the storer
// (instead of a goroutine per wait), and only when the journal is idle;
// while records are appended but not yet acknowledged, the storer polls
// DurableSeq every GatherDelay instead. That also keeps the storer out of
// the journal's group commit, where a WaitDurable on a pending sequence may
// be asked to do the write and fdatasync itself.
//
// Nothing that is waited for waits on the gathering: a blocked WaitApplied
// caller kicks the storer, which then applies what it has at once, and
// reads and applies without gathering until no caller is left; a cancelled
// ctx ends a gather at once. A journal closed during a gather is noticed
// when the gather ends, GatherDelay later at most (the server cancels the
// storer's ctx when it shuts down, which is immediate). A journal followed
// from files (DirJournal) shows new records only when WaitDurable polls,
// so there a gather only defers the batch: its batches are already cut by
// the poll interval.

// gatherSlice bounds one sleep of a gather, so that a long GatherDelay
// still notices a batch that has filled up meanwhile.
const gatherSlice = 5 * time.Millisecond

// batchReader reads the journal into a batch whose keys and values live in
// a reused arena.
type batchReader struct {
	rd         journal.Reader
	rec        journal.Record
	batch      []journal.Record
	arena      arena
	bytes      int // encoded size of the batch
	maxRecords int
	maxBytes   int
}

func (b *batchReader) reset() {
	b.batch, b.arena.used, b.bytes = b.batch[:0], 0, 0
}

func (b *batchReader) full() bool {
	return len(b.batch) >= b.maxRecords || b.bytes >= b.maxBytes
}

// fill reads until the batch is full or the reader has caught up with the
// acknowledged records; atEnd says which.
func (b *batchReader) fill() (atEnd bool, err error) {
	for !b.full() {
		if err := b.rd.Next(&b.rec); err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return false, fmt.Errorf("storage: storer: %w", err)
		}
		r := b.rec
		r.Key, r.Value = b.arena.copy(b.rec.Key), b.arena.copy(b.rec.Value)
		b.batch = append(b.batch, r)
		b.bytes += journal.EncodedLen(&b.rec)
	}
	return false, nil
}

// follower is the one goroutine that blocks in WaitDurable for the storer:
// at most one request is in flight, and its answer waits in res.
type follower struct {
	j       journal.Journal
	req     chan uint64
	res     chan error // capacity 1: the goroutine never blocks on it
	quit    chan struct{}
	started bool
	pending bool // a request is in flight or answered but not received
	timer   *time.Timer
}

func newFollower(j journal.Journal) *follower {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &follower{j: j, req: make(chan uint64, 1), res: make(chan error, 1), quit: make(chan struct{}), timer: t}
}

// want asks for WaitDurable(seq), unless a request is already pending. A
// pending request is for a sequence no later than seq (the storer only
// moves forward), so its answer comes as soon as seq's would.
func (f *follower) want(seq uint64) {
	if f.pending {
		return
	}
	if !f.started {
		f.started = true
		go f.run()
	}
	f.pending = true
	f.req <- seq
}

func (f *follower) run() {
	for {
		select {
		case seq := <-f.req:
			f.res <- f.j.WaitDurable(seq)
		case <-f.quit:
			return
		}
	}
}

// answer is the channel to receive a pending answer on; nil (never ready)
// when nothing is pending.
func (f *follower) answer() <-chan error {
	if f.pending {
		return f.res
	}
	return nil
}

// stop ends the goroutine once its WaitDurable returns, which a journal's
// Close makes it do.
func (f *follower) stop() {
	close(f.quit)
	f.timer.Stop()
}

// arm starts the storer's one timer for d and returns its channel: the
// waits allocate no timer each.
func (f *follower) arm(d time.Duration) <-chan time.Time {
	f.timer.Reset(d)
	return f.timer.C
}

// awaitRecords waits, with nothing to read, until record next may be
// acknowledged, wake passes (when not zero), or a WaitApplied caller
// arrives. It returns false when the storer must stop: ctx is done or the
// journal is closed.
func (s *Storer) awaitRecords(ctx context.Context, f *follower, next uint64, wake time.Time) bool {
	var tick time.Duration // > 0: poll instead of waiting in WaitDurable
	if s.opts.GatherDelay > 0 && s.waiting.Load() == 0 && s.appendedBeyond(next) {
		tick = s.opts.GatherDelay
	}
	var timer <-chan time.Time
	if !wake.IsZero() || tick > 0 {
		d := time.Until(wake)
		if wake.IsZero() || (tick > 0 && tick < d) {
			d = tick
		}
		timer = f.arm(d)
	}
	if tick == 0 {
		f.want(next)
	}
	defer f.timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-s.kick:
	case <-timer:
	case err := <-f.answer():
		f.pending = false
		if errors.Is(err, journal.ErrClosed) {
			return false
		}
		if err != nil {
			// A failed journal may resume; what it acknowledged stays
			// readable meanwhile.
			s.opts.Logf("storer: journal: %v; retrying", err)
			return sleepCtx(ctx, s.opts.RetryMax)
		}
	}
	return true
}

// appendedBeyond reports whether record next has been appended to a local
// journal that is working but not yet acknowledged: the journal is busy,
// and the acknowledgement will come within the group commit's latency.
// A journal that cannot tell (one followed from files) is waited on.
func (s *Storer) appendedBeyond(next uint64) bool {
	j, ok := s.j.(interface{ LastSeq() uint64 })
	return ok && s.j.DurableSeq() < next && j.LastSeq() >= next && s.j.Err() == nil
}

// gather lets a partial batch grow until deadline, until it is full, or
// until a WaitApplied caller arrives. It returns false when ctx is done.
func (s *Storer) gather(ctx context.Context, f *follower, br *batchReader, deadline time.Time) (bool, error) {
	defer f.timer.Stop()
	for !br.full() && s.waiting.Load() == 0 {
		d := time.Until(deadline)
		if d <= 0 {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-s.kick:
		case <-f.arm(min(d, gatherSlice)):
		case err := <-f.answer():
			f.pending = false
			if errors.Is(err, journal.ErrClosed) {
				// Apply what is here; the next wait sees the close.
				_, err := br.fill()
				return true, err
			}
		}
		if _, err := br.fill(); err != nil {
			return false, err
		}
	}
	return true, nil
}
