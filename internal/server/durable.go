package server

// Durability, as Amazon MemoryDB does it (SIGMOD'24): a command runs in
// memory, its effect is appended to the journal inside the cache's per-key
// critical section, the item's CAS becomes the record's sequence, and every
// reply is held until the journal is durable up to the highest sequence the
// batch wrote or read. The executors know nothing of this beyond calling
// s.do instead of s.cache.Do and s.flushAll instead of s.cache.FlushAll, and
// answering errJournal with SERVER_ERROR.
//
// Which effects are journaled:
//
//   - OpPut: a Set record with the resulting item (set, add, cas, append,
//     incr, ...). A put of a stale item (meta delete with I, a stale meta
//     cas) is journaled as a Delete: the stale mark is not in the record
//     format, and after a restart an invalidated item must not come back as
//     fresh, so it comes back as a miss and is recached.
//   - OpDelete: a Delete record, even on a miss (the failed-set cleanup);
//     the storage backend may hold the key even when memory does not.
//   - OpMeta whose Exptime changed (touch, gat, mg T): a Touch record. Touch
//     keeps the item's CAS, as memcached does, so a hit cannot wait on the
//     CAS alone: touch_hold.go holds readers until the touch is durable.
//   - Other OpMeta changes (the meta win token, Fetched, Atime) are soft
//     state and are not journaled: after a restart no token is outstanding.
//   - flush_all: a FlushAll record (Delayed for flush_all N), and, when a
//     delayed one comes due, a second, immediate one (flush_bite.go).

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"petrel/internal/cache"
	"petrel/internal/journal"
	"petrel/internal/protocol"
	"petrel/internal/storage"
)

// errJournal is what s.do returns when the journal refused a mutation; the
// mutation was not applied and the client gets a server error.
var errJournal = errors.New("journal unavailable")

// durable is the server's journal and the state around it. It is nil when
// durability is off.
type durable struct {
	cfg  DurableConfig
	mode string // sync or async
	j    *journal.Local
	lock *storage.Lock // the data directory's journal writer lock
	back *backing      // the storage backend and its storer (recover_storage.go)

	// failedLogged is set once the journal's failure has been logged.
	failedLogged atomic.Bool
	recovery     recoveryStats

	// warming is set while the memory tier is being loaded with
	// --accept-during-warmup; live mutations then mark their keys so that
	// loading never overwrites them (recover.go).
	warming atomic.Pointer[warmGuard]
	loading chan struct{} // closed when such a load ends; nil without one
	// loadAborted is set, before loading closes, when a shutdown stopped
	// the load: the requests that waited for it must not then run on a
	// partly loaded memory tier (an add would store over an acknowledged
	// value that was not loaded yet, and journal it).
	loadAborted atomic.Bool

	// rt reads the backend on a miss (--read-through; readthrough.go);
	// nil when off.
	rt *readThrough
	// backlogFull is set while the backend lags the journal by more than
	// --backlog-limit: mutations then get SERVER_ERROR (backend_backlog.go).
	backlogFull atomic.Bool

	bite    flushBite  // the delayed flush_all pending (flush_bite.go)
	touches touchHolds // touches not yet durable (touch_hold.go)
}

// hold raises the sequence the current batch's replies wait for.
func (s *session) hold(seq uint64) {
	if seq > s.holdSeq {
		s.holdSeq = seq
	}
}

// do is s.cache.Do with durability: see the file comment. It returns the
// cache's result, or an error wrapping errJournal when the journal refused
// the mutation, in which case nothing changed and the replies the callback
// appended to s.out are taken back.
func (s *session) do(key []byte, fn func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op)) (uint64, error) {
	d := s.srv.dur
	if d == nil {
		return s.cache.Do(key, s.now, fn)
	}
	return s.doDurable(d, key, fn, d.rt != nil)
}

// doDurable is s.do with a journal. With load set, a miss that changes
// nothing (a get, a touch, an incr, a cas of an absent key) is not
// answered: the backend is read outside the key's lock, what it holds is
// cached, and fn runs again on the result (readthrough.go).
func (s *session) doDurable(d *durable, key []byte, fn func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op), load bool) (uint64, error) {
	biteErr := s.biteIfDue(d) // before the cache sees the clock past the deadline
	var jerr error
	deferred, put, missed := false, false, false
	mark := len(s.out)
	cas, err := s.cache.Do(key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		if l != cache.Hit && d.warming.Load() != nil {
			// --accept-during-warmup: the key may not be loaded yet.
			deferred = true
			return it, 0
		}
		oldExp, oldCAS := it.Exptime, it.CAS
		next, op := fn(it, l)
		if load && l != cache.Hit && op&(cache.OpPut|cache.OpDelete) == 0 && d.rt.shouldLoad(key) {
			missed = true
			s.out = s.out[:mark]
			return it, 0
		}
		if l == cache.Hit {
			// The reply depends on the item's version and on its last
			// touch, which kept the CAS; either may not be durable yet.
			durable := d.j.DurableSeq()
			if oldCAS > durable {
				s.hold(oldCAS)
			}
			if t := d.touches.after(key, durable); t != 0 {
				s.hold(t)
			}
		}
		rec := &s.rec
		switch {
		case op&cache.OpPut != 0 && next.Stale:
			*rec = journal.Record{Type: journal.TypeDelete, Key: key}
		case op&cache.OpPut != 0:
			*rec = journal.Record{Type: journal.TypeSet, Key: key, Value: next.Value, Flags: next.Flags, Exptime: next.Exptime}
		case op&cache.OpDelete != 0:
			*rec = journal.Record{Type: journal.TypeDelete, Key: key}
		case op&cache.OpMeta != 0 && l == cache.Hit && next.Exptime != oldExp:
			*rec = journal.Record{Type: journal.TypeTouch, Key: key, Exptime: next.Exptime}
		default:
			if l != cache.Hit {
				s.holdMiss(d)
			}
			return next, op
		}
		if biteErr != nil || d.backlogFull.Load() {
			// A failed bite (see biteIfDue), or the backlog limit.
			*rec = journal.Record{}
			jerr = biteErr
			if jerr == nil {
				jerr = errBacklog
			}
			s.out = s.out[:mark]
			return it, 0
		}
		touch := rec.Type == journal.TypeTouch
		seq, err := d.j.Append(rec)
		*rec = journal.Record{} // drop the references to cache memory
		if err != nil {
			jerr = err
			s.out = s.out[:mark]
			return it, 0
		}
		if touch {
			d.touches.note(key, seq) // before the new TTL is visible
		}
		if w := d.warming.Load(); w != nil {
			w.mark(key, seq)
		}
		if d.rt != nil {
			d.rt.wrote(key)
		}
		s.hold(seq)
		if op&cache.OpPut != 0 {
			next.CAS = seq
			op |= cache.OpKeepCAS
			put = true
		}
		return next, op
	})
	if deferred {
		<-d.loading // fn has not run; it runs once, on the loaded cache
		if d.loadAborted.Load() {
			return 0, fmt.Errorf("%w: %w", errJournal, journal.ErrClosed)
		}
		return s.do(key, fn)
	}
	if missed {
		if !d.rt.load(key) {
			// The backend did not answer: a delete that misses in memory
			// is journaled anyway (deleteUnknown), lest the key's value in
			// the backend outlive a delete its client was told is done.
			s.backendUnknown = true
			defer func() { s.backendUnknown = false }()
		}
		return s.doDurable(d, key, fn, false)
	}
	if jerr != nil {
		d.noteFailure(s.srv, jerr)
		return 0, fmt.Errorf("%w: %w", errJournal, jerr)
	}
	if put && err != nil {
		s.undoPut(d, key)
	}
	return cas, err
}

// deleteUnknown is the op for a delete that found no item in memory: none,
// unless read-through could not ask the backend (backendUnknown). Then the
// delete is journaled all the same, a tombstone for whatever the backend
// holds, since the reply says the key is gone (NOT_FOUND).
func (s *session) deleteUnknown() cache.Op {
	if s.backendUnknown {
		return cache.OpDelete
	}
	return 0
}

// undoPut journals the state of key again after the cache refused a put
// that was already journaled (too large, or no memory under -M): the old
// item is still in memory, unchanged, and the journal must not replay the
// refused value over it. It is re-journaled as a Set of itself (and its
// CAS becomes the new sequence, without an allocation), or a Delete when
// there was none. If that append fails too, the journal has failed, and
// the refused record is as unacknowledged as any other.
func (s *session) undoPut(d *durable, key []byte) {
	_, _ = s.cache.Do(key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
		rec := &s.rec
		if l == cache.Hit {
			*rec = journal.Record{Type: journal.TypeSet, Key: key, Value: it.Value, Flags: it.Flags, Exptime: it.Exptime}
			if it.Stale {
				*rec = journal.Record{Type: journal.TypeDelete, Key: key}
			}
		} else {
			*rec = journal.Record{Type: journal.TypeDelete, Key: key}
		}
		seq, err := d.j.Append(rec)
		*rec = journal.Record{}
		if err != nil {
			return it, 0
		}
		s.hold(seq)
		if l != cache.Hit {
			return it, 0
		}
		it.CAS = seq
		return it, cache.OpMeta | cache.OpKeepCAS
	})
}

// holdMiss holds a reply that found no item until everything appended so
// far is durable: the absence may come from a delete that is not. A failed
// journal will never get there; misses then go out at once (whatever the
// failed records did is unknown, as for any unacknowledged write).
func (s *session) holdMiss(d *durable) {
	if last := d.j.LastSeq(); last > d.j.DurableSeq() && last > s.holdSeq && d.j.Err() == nil {
		s.hold(last)
	}
}

// flushAll is s.cache.FlushAll with durability: a FlushAll record is
// appended first, so that it is ordered after every write it invalidates.
// A delayed flush that has come due is bitten first (flush_bite.go), and
// the new flush then replaces or clears the tracked deadline, as it does
// in the memory tier. The new deadline is published before the append, so
// that a request whose clock is already past it bites after this record
// (it waits for bite.mu) instead of journaling past the deadline unbitten.
func (s *session) flushAll(at int64) error {
	d := s.srv.dur
	if d == nil {
		s.cache.FlushAll(s.now, at)
		return nil
	}
	d.bite.mu.Lock()
	defer d.bite.mu.Unlock()
	if err := s.biteLocked(d); err != nil {
		return fmt.Errorf("%w: %w", errJournal, err)
	}
	delayed := at > s.now
	prev := d.bite.due.Load()
	if delayed {
		d.bite.due.Store(at)
	}
	seq, err := d.j.Append(&journal.Record{Type: journal.TypeFlushAll, At: at, Delayed: delayed})
	if err != nil {
		d.bite.due.Store(prev)
		d.noteFailure(s.srv, err)
		return fmt.Errorf("%w: %w", errJournal, err)
	}
	s.applyFlush(d, seq, at)
	if !delayed {
		d.bite.due.Store(0)
	}
	return nil
}

// applyFlush applies the flush_all journaled at seq to memory. Writes on
// other connections run between the append and this, on either side of
// the flush in the journal. An immediate flush is therefore applied at
// its sequence (Cache.FlushBelow), not at the highest CAS stored when it
// gets here, so that memory drops exactly what a restart's replay drops.
func (s *session) applyFlush(d *durable, seq uint64, at int64) {
	if w := d.warming.Load(); w != nil && at <= s.now {
		// An immediate flush ends the load: nothing older survives it. A
		// delayed one does not: what is still to load must be served
		// until the deadline, and the memory tier's pending flush
		// invalidates it then, as it does the items already loaded.
		w.flushed(seq)
	}
	if d.rt != nil {
		d.rt.flushed()
	}
	if at <= s.now {
		s.cache.FlushBelow(s.now, seq)
	} else {
		s.cache.FlushAll(s.now, at)
	}
	s.hold(seq)
}

// awaitDurable waits until the batch's replies may be sent: everything
// they depend on is acknowledged by the journal (written and fdatasync'ed
// in sync mode, written to the operating system in async mode). An error
// means they never will be, and the replies must not be sent.
func (s *session) awaitDurable() error {
	d := s.srv.dur
	if d == nil || s.holdSeq == 0 {
		return nil
	}
	seq := s.holdSeq
	s.holdSeq = 0
	if err := d.j.WaitDurable(seq); err != nil {
		d.noteFailure(s.srv, err)
		return fmt.Errorf("waiting for journal sequence %d: %w", seq, err)
	}
	if d.cfg.Backend.writeThrough() {
		// Write-through: the replies wait for the backend too. Concurrent
		// writers still share the storer's batches. Not for ever: with the
		// backend down, a client that gave up would hold its connection
		// slot, and shutdown would wait on it.
		if st := d.storer(); st != nil {
			wait := d.cfg.Backend.timeout()
			ctx, cancel := context.WithTimeout(s.srv.abandon, wait)
			err := st.WaitApplied(ctx, seq)
			cancel()
			if err != nil {
				if s.srv.abandon.Err() != nil {
					err = errors.New("shutting down")
				} else if ctx.Err() != nil {
					err = fmt.Errorf("not within --backend-timeout %v", wait)
				}
				return fmt.Errorf("write-through: the backend has not applied sequence %d (%w); the write is in the journal and will be applied", seq, err)
			}
		}
	}
	return nil
}

// serverError is the SERVER_ERROR line for a journal failure. It names
// the operating system's cause (ENOSPC, EIO) when there is one, for the
// operator reading client logs; the full error, with file and offset, is in
// the server's log.
func serverError(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return "SERVER_ERROR journal unavailable: " + errno.Error()
	case errors.Is(err, journal.ErrClosed):
		return "SERVER_ERROR journal closed: shutting down"
	case errors.Is(err, errBacklog):
		return "SERVER_ERROR backlog limit reached: the storage backend is behind"
	}
	return "SERVER_ERROR journal unavailable"
}

// noteFailure logs the journal's failure once, loudly.
func (d *durable) noteFailure(srv *Server, err error) {
	if !errors.Is(err, journal.ErrFailed) {
		return
	}
	if d.failedLogged.CompareAndSwap(false, true) {
		srv.logger.Printf("JOURNAL FAILED: %v; writes now get SERVER_ERROR, reads of durable data go on; %s", err, d.failedAdvice())
	}
}

// failedAdvice tells the operator what brings writes back.
func (d *durable) failedAdvice() string {
	if errors.Is(d.j.Err(), journal.ErrRemoved) {
		return "the journal's files were removed under it, so it cannot resume: stop petrel and start it with --repair, " +
			"which continues from what the store holds (writes only in the removed files are lost)"
	}
	if r := d.cfg.JournalRetry; r > 0 && !d.storerExternal() {
		return fmt.Sprintf("petrel retries every %v and resumes once the disk is fixed (or restart it)", r)
	}
	return "restart petrel once the disk is fixed"
}

// storerExternal reports whether `petrel storer` applies the journal from
// another process.
func (d *durable) storerExternal() bool { return d.back != nil && d.back.external }

// binStatusInternal is the binary protocol's "Internal error" status,
// which a journal failure answers with its cause as the message.
const binStatusInternal uint16 = 0x84

func (s *session) binJournalError(r *protocol.BinRequest, err error) {
	s.out = protocol.AppendBinErrorText(s.out, r.Opcode, binStatusInternal, r.Opaque, serverError(err)[len("SERVER_ERROR "):])
}
