package server

// The bite of a delayed flush_all. In memory, as in memcached, a delayed
// flush (flush_all N) takes everything stored up to its second
// (cache/flush.go). The journal and the store order a flush by sequence,
// so when such a flush comes due it is journaled again as an immediate
// flush, "the bite", and memory applies that at the bite's sequence
// (Cache.FlushBelow), as it does any immediate flush_all. Memory, the
// journal, a restart's replay and the store then drop exactly the records
// below the bite.
//
// Who bites: every request that goes through s.do (reads too) or
// s.flushAll first compares its clock with the tracked deadline (one
// atomic load), and the first one that sees the clock past it appends the
// bite before its own record, under bite.mu, after checking again that the
// same deadline is still pending. Readers bite as well so that no client
// sees memory past the deadline before the bite is in the journal.
//
// Races, all ending with memory and journal in agreement:
//   - A request that checked before the deadline (or just before another
//     one bit) and appends after the bite lands above it: it survives in
//     memory, and after a restart, which is consistent (memcached, too,
//     keeps what is stored once the flush's second is over).
//   - The memory tier may convert the delayed flush itself before the
//     bite (dueLocked: Maintain's tick, or a request whose bite failed), at
//     the highest CAS stored so far. A record appended before the bite but
//     stored in memory after that conversion is then visible until the
//     bite, whose FlushBelow raises the mark over it; the end state agrees.
//
// No timer bites at the deadline when no request comes: nothing reads
// memory meanwhile but the requests that would bite first, and a restart
// bites itself (recoverFlush). A timer would also run on the real clock,
// while requests run on their batch's clock.

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// flushBite tracks the delayed flush_all pending in the memory tier, with
// the cache's semantics: a later delayed flush replaces it, an immediate
// one clears it, and a bite clears it.
type flushBite struct {
	due atomic.Int64 // the pending delayed flush's time; 0 for none
	mu  sync.Mutex   // serialises bites and flush_alls; taken under no other lock
	// rearm is a delayed flush_all to journal again after a forced bite
	// (forceBite); 0 for none. Guarded by mu.
	rearm int64
}

// forceBite makes the first request journal an immediate flush before its
// own record, as a bite: a failed journal resumes (resumeJournal) after
// losing an immediate flush that memory applied. A delayed flush_all
// pending in memory is journaled again after it, since the bite would
// otherwise cancel it, and its own record may be lost too.
func (b *flushBite) forceBite() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if due := b.due.Load(); due > 1 {
		b.rearm = due
	}
	b.due.Store(1)
}

// biteIfDue bites the pending delayed flush_all when the session's clock
// has passed it. An error (the journal's) means the bite could not be
// journaled; the request may still read, but must journal nothing, lest
// its record follow the deadline with no bite before it (a restart would
// drop it, memory would not).
func (s *session) biteIfDue(d *durable) error {
	if due := d.bite.due.Load(); due == 0 || s.now <= due {
		return nil
	}
	d.bite.mu.Lock()
	defer d.bite.mu.Unlock()
	return s.biteLocked(d)
}

// biteLocked is biteIfDue with d.bite.mu held.
func (s *session) biteLocked(d *durable) error {
	due := d.bite.due.Load()
	if due == 0 || s.now <= due {
		return nil // bitten by another request, or replaced by a flush_all
	}
	seq, err := d.j.Append(&journal.Record{Type: journal.TypeFlushAll, At: s.now})
	if err != nil {
		d.noteFailure(s.srv, err)
		return err
	}
	d.bite.due.Store(0)
	s.applyFlush(d, seq, s.now)
	at := d.bite.rearm
	d.bite.rearm = 0
	if at > s.now {
		seq, err = d.j.Append(&journal.Record{Type: journal.TypeFlushAll, At: at, Delayed: true})
		if err != nil {
			d.noteFailure(s.srv, err)
			return err // the bite is journaled: the delayed flush is lost, as any unacknowledged write
		}
		d.bite.due.Store(at)
		s.applyFlush(d, seq, at)
	}
	return nil
}

// recoverFlush sets up the flush state from marks (flushMarks) before
// anything is loaded or served, and returns the cut: the sequence below
// which nothing is loaded.
// A delayed flush_all still to come is re-armed in memory and tracked for
// its bite. One that came due while the server was down, with no flush
// record after it, was never bitten: no request ran past its deadline
// (each would have bitten first), so everything in the journal and the
// store was stored before the deadline and goes. It is bitten now, before
// the storer starts, so that the store drops the same.
func (srv *Server) recoverFlush(d *durable, marks []journal.FlushMark, now int64) (uint64, error) {
	cut, pending, bite := flushCut(marks, now)
	switch {
	case bite:
		seq, err := d.j.Append(&journal.Record{Type: journal.TypeFlushAll, At: now})
		if err == nil {
			err = d.j.WaitDurable(seq)
		}
		if err != nil {
			return 0, fmt.Errorf("journaling the delayed flush_all that came due while the server was down: %w", err)
		}
		last := marks[len(marks)-1]
		srv.logger.Printf("journal: the delayed flush_all of sequence %d came due at %s, while the server was down; "+
			"journaled it as flush_all sequence %d: nothing stored before it is loaded",
			last.Seq, time.Unix(last.At+1, 0).UTC().Format(time.RFC3339), seq)
		srv.cache.FlushBelow(now, seq)
		return seq, nil
	case pending != 0:
		srv.cache.FlushAll(now, pending)
		d.bite.due.Store(pending)
	}
	return cut, nil
}

// flushMarks is the journal's flush_alls (marks, in order) with the
// backend's pending flush marker (storage.PendingFlusher) among them when
// the journal no longer holds its record: truncated once the store held
// it durably, or dropped by a --repair restart. Without it such a flush
// was neither re-armed nor bitten, and the next flush_all replaced it in
// the store, bringing back what it hid. The marker is a delayed flush (a
// version-1 one still to come when applied is taken as one too), and is
// below every record the journal holds, so it goes first.
func flushMarks(be storage.Backend, marks []journal.FlushMark) []journal.FlushMark {
	pf, ok := be.(storage.PendingFlusher)
	if !ok {
		return marks
	}
	seq, at := pf.PendingFlush()
	if seq == 0 || slices.ContainsFunc(marks, func(m journal.FlushMark) bool { return m.Seq == seq }) {
		return marks
	}
	m := journal.FlushMark{Seq: seq, At: at, Delayed: true, Marked: true}
	i, _ := slices.BinarySearchFunc(marks, seq, func(m journal.FlushMark, s uint64) int { return cmp.Compare(m.Seq, s) })
	return slices.Insert(slices.Clone(marks), i, m)
}

// dropReplacedFlush makes the backend forget its pending flush marker when
// the journal holds a flush_all after what the backend applied
// (storage.PendingFlusher): that record replaces or bites the marker,
// and a marker due by now would hide from the warm-up what memory must
// hold, until the storer applied the record.
func dropReplacedFlush(be storage.Backend, marks []journal.FlushMark, applied uint64) {
	pf, ok := be.(storage.PendingFlusher)
	if !ok || len(marks) == 0 || marks[len(marks)-1].Seq <= applied {
		return
	}
	pf.DropPendingFlush()
}

// flushCut reads the journal's flush_alls (in order) at now. cut is the
// sequence of the last immediate one (nothing before it survives; 0 for
// none). pending is the time of a delayed one still to come (0 for none),
// which the memory tier must re-arm, since the store it is warmed from
// hides what such a flush covers only once it is due. bite says that the
// last flush_all is a delayed one already due, which nothing bit.
//
// A delayed flush followed by another flush record was either replaced by
// it (memcached's rule: a later flush_all replaces a pending delayed one)
// or bitten before it (the bite is an immediate flush after it): either
// way the records after it decide. Version-1 segments do not mark delayed
// flushes, so theirs read as immediate ones once due, at their own
// sequence (writes between such a command and its deadline survive: the
// old approximation), and as pending before. A version-2 immediate flush
// cuts whatever the clock says: one whose time is after now was made
// before the clock was stepped back, and memory dropped everything then.
func flushCut(marks []journal.FlushMark, now int64) (cut uint64, pending int64, bite bool) {
	for i, m := range marks {
		switch {
		case m.Delayed && i < len(marks)-1:
			// Replaced or bitten: the records after it decide.
		case m.Delayed && m.At <= now:
			pending, bite = 0, true
		case !m.Delayed && (m.Marked || m.At <= now):
			cut, pending = m.Seq, 0
		default:
			pending = m.At // a later flush_all replaces a delayed one
		}
	}
	return cut, pending, bite
}
