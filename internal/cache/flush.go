package cache

// flush_all, ordered by CAS. Every CAS the cache hands out or is handed
// (the counter, Config.NextCAS, OpKeepCAS) raises one high-water mark,
// Cache.cas, and the internal counter draws above it. An immediate flush
// records that mark, and invalidates exactly the items whose CAS is at or
// below it: everything stored before the flush, and nothing stored after.
// memcached 1.6 does the same with its oldest_cas (plus a time test that
// Petrel does not need).
//
// The mark kept is one above the high-water mark, so that 0 means no flush
// and a flush of an empty cache still covers a kept CAS of 0.
//
// A delayed flush (flush_all N) is due at a time, not at a CAS, and, as in
// memcached, it also takes what is stored during its second: at and before
// `at` (memcached's oldest_live). So while the clock reads `at` every item
// reads as flushed, and the first caller that sees a later second turns the
// flush into a mark: Do does so before it looks anything up or draws a
// CAS, so an item stored by a Do that saw now > at lies above the mark and
// survives, and one stored before lies below it. Maintain (whole-segment
// expiry) converts it the same way. The conversion takes flushMu, so two
// callers cannot record different marks. With durability the server
// journals the conversion as an immediate flush ("the bite",
// server/flush_bite.go) and applies it with FlushBelow at the bite's
// sequence; a conversion made here first, at a lower mark, is raised by
// it, so memory ends up dropping exactly what the journal drops.
//
// Limits, as in memcached's CAS test: an item stored after a flush with a
// kept CAS below the flush's mark (a CAS from before the flush, such as a
// meta E token where the protocol has one) reads as flushed at once, and a
// kept CAS of 0 is covered by any flush. A kept CAS above the counter moves
// the counter up, so later items stay above it (up to casOrderLimit). The
// durability layer keeps journal sequences, which only grow, so none of
// this arises there.

import "math"

// flushState is the published flush state. Each flush that has taken
// effect invalidates a superset of the ones before it, so one mark is kept,
// plus at most one delayed flush not yet due, which a later flush_all
// replaces as in memcached.
type flushState struct {
	mark uint64 // items with CAS below mark are flushed; 0 until the first flush
	at   int64  // a delayed flush due at this unix time; 0 if none
}

// flushMark returns the CAS mark in force at now, converting a delayed
// flush whose second has passed. flushMu is a leaf.
func (c *Cache) flushMark(now int64) uint64 {
	f := c.flush.Load()
	switch {
	case f == nil:
		return 0
	case f.at != 0 && now == f.at:
		return math.MaxUint64 // the flush's own second: everything goes
	case f.at != 0 && now > f.at:
		c.flushMu.Lock()
		f = c.dueLocked(now)
		c.flushMu.Unlock()
	}
	return f.mark
}

// dueLocked converts a delayed flush whose second has passed into a mark
// and returns the state. Called with flushMu held.
func (c *Cache) dueLocked(now int64) *flushState {
	f := c.flush.Load()
	if f == nil || f.at == 0 || now <= f.at {
		return f
	}
	f = &flushState{mark: max(f.mark, c.cas.Load()+1)}
	c.flush.Store(f)
	return f
}

// flushedBy reports whether a flush mark covers an item's CAS.
func flushedBy(mark, cas uint64) bool { return cas < mark }

// FlushAll invalidates every item stored at or before at once now >= at.
// An immediate flush (at <= now) invalidates exactly the items stored
// before it, so an item stored after it in the same second survives.
func (c *Cache) FlushAll(now, at int64) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	var f flushState
	if old := c.dueLocked(now); old != nil {
		f = *old
	}
	if at <= now {
		f.mark, f.at = max(f.mark, c.cas.Load()+1), 0
	} else {
		f.at = at
	}
	c.flush.Store(&f)
}

// FlushBelow is an immediate flush at a CAS the caller chose: it
// invalidates exactly the items whose CAS is below mark, whenever they are
// stored, and, as FlushAll does, replaces a delayed flush not yet due. The
// durability layer flushes at the flush_all record's journal sequence,
// since items carry theirs as CAS: memory then drops exactly what the
// journal's order drops, even for a set on another connection whose record
// is appended on one side of the flush's and reaches memory on the other.
// FlushAll's own mark (one above the highest CAS stored so far) would put
// such a set on the side of its arrival in memory. Later CAS draws come
// from above mark.
func (c *Cache) FlushBelow(now int64, mark uint64) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	var f flushState
	if old := c.dueLocked(now); old != nil {
		f = *old
	}
	f.mark, f.at = max(f.mark, mark), 0
	c.noteCAS(mark)
	c.flush.Store(&f)
}

// RewindCAS forgets the CAS values above seq. The durability layer calls
// it when a failed journal resumes and hands out the sequences above seq
// again, once every item holding one of them has been dropped: new items
// then carry CAS values at or below the old high-water mark, and a flush
// mark above seq+1 (a flush whose record was lost, or a delayed flush
// converted at a lost CAS) would read them as flushed. Every item such a
// mark covered that is left has a CAS at or below seq, so seq+1 still
// covers it. A delayed flush not yet due stays pending. It returns the
// flush mark it found (0 for none): one above seq says that memory flushed
// past what the caller's records up to seq account for.
func (c *Cache) RewindCAS(seq uint64) uint64 {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	if c.cas.Load() > seq && seq < casOrderLimit {
		c.cas.Store(seq)
	}
	f := c.flush.Load()
	if f == nil {
		return 0
	}
	if f.mark > seq+1 {
		c.flush.Store(&flushState{mark: seq + 1, at: f.at})
	}
	return f.mark
}

// casOrderLimit bounds the CAS values that move the high-water mark, so
// that a kept CAS near 2^64 (a client-chosen token) cannot make it wrap.
// Counters and journal sequences never get near it; an item kept with a CAS
// above it is not ordered against flush_all and survives it.
const casOrderLimit = 1 << 62

// noteCAS raises the CAS high-water mark to cas.
func (c *Cache) noteCAS(cas uint64) {
	if cas >= casOrderLimit {
		return
	}
	atomicMax(&c.cas, cas)
}

// nextCAS draws a CAS for a new item: Config.NextCAS's, else one above
// every CAS so far.
func (c *Cache) nextCAS() uint64 {
	if c.cfg.NextCAS != nil {
		v := c.cfg.NextCAS()
		c.noteCAS(v)
		return v
	}
	return c.cas.Add(1)
}
