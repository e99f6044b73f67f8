package cache

// Making room. Memory comes back a whole segment at a time, in this order:
//
//  1. reclaim: segments whose latest exptime has passed, whose items were
//     all invalidated by flush_all, or whose items are all dead, are freed
//     without checking their items' expiry one by one (Segcache's TTL
//     buckets make this common; see ttlBucket). Items still live in them
//     (touched to a later exptime) are copied forward.
//  2. evictOne, by Config.Eviction:
//     - EvictFIFO: the oldest sealed segment. Items hit since they were
//       written (frequency mark > 0) are copied forward into the open
//       segment of their TTL bucket with the mark reset, up to a quarter
//       of a segment per victim, so eviction always makes net progress.
//     - EvictMerge: Segcache's merge eviction. The oldest sealed segment
//       and up to three more of the same TTL bucket, oldest first, are
//       merged: items whose frequency reaches an adaptive cutoff are copied
//       forward with the mark halved, keeping about a quarter of the bytes;
//       the cutoff rises when a victim keeps more than its share and falls
//       when it keeps less than half of it.
//     - EvictRandom: a random sealed segment, everything in it dropped
//       (Twemcache's random slab eviction).
//     - EvictNone: nothing is evicted; the put fails with ErrNoMemory.
//
// Unlinking a segment's items means reading each key, hashing it, and
// clearing the slot that points exactly at (segment, offset) under that
// key's shard lock. Slots pointing elsewhere mean the item is already dead.

import (
	"math"
	"runtime"
)

// retain says which live items of a segment being freed are copied forward.
type retain struct {
	budget int   // bytes that may still be copied
	cutoff uint8 // minimum frequency mark; 0 keeps every live item
	halve  bool  // halve the mark of a copied item (else reset it)
}

// makeRoom reserves size bytes for bucket, reclaiming or evicting segments
// as needed. The caller holds no shard lock.
func (c *Cache) makeRoom(size, bucket int, now int64) (int32, int, bool) {
	for tries := 0; tries < 4*len(c.segs)+8; tries++ {
		if id, off, ok := c.allocFast(size, bucket, false); ok {
			return id, off, true
		}
		c.evictMu.Lock()
		id, off, ok := c.allocFast(size, bucket, false)
		if !ok {
			progress := c.reclaim(now) > 0
			if !progress && c.cfg.Eviction != EvictNone {
				progress = c.evictOne(now)
			}
			if !progress {
				c.evictMu.Unlock()
				return 0, 0, false
			}
			id, off, ok = c.allocFast(size, bucket, false)
		}
		c.evictMu.Unlock()
		if ok {
			return id, off, true
		}
	}
	return 0, 0, false
}

// Maintain frees whole segments that have expired or been flushed. The
// server calls it about once a second.
func (c *Cache) Maintain(now int64) {
	c.evictMu.Lock()
	c.reclaim(now)
	c.evictMu.Unlock()
}

// reclaim frees every segment with nothing live left in it and returns how
// many it freed. Segments with a put in flight are left for next time.
// Called with evictMu held.
func (c *Cache) reclaim(now int64) int {
	mark := c.flushMark(now)
	c.victims = c.victims[:0]
	c.alloc.Lock()
	for i := range c.segs {
		sg := &c.segs[i]
		if (sg.state != segSealed && sg.state != segOpen) || sg.writers.Load() != 0 {
			continue
		}
		if sg.maxExp.Load() <= now || sg.dead.Load() >= int64(sg.used) || flushedBy(mark, sg.maxCAS.Load()) {
			c.detach(int32(i))
			c.victims = append(c.victims, int32(i))
		}
	}
	c.alloc.Unlock()
	for _, id := range c.victims {
		if sg := &c.segs[id]; sg.dead.Load() < int64(sg.used) {
			c.scan(id, now, &retain{budget: c.segSize})
		}
		c.release(id)
		c.segExpired.Add(1)
	}
	return len(c.victims)
}

// evictOne evicts by the configured policy. Called with evictMu held;
// reports false if there is nothing to evict.
func (c *Cache) evictOne(now int64) bool {
	c.alloc.Lock()
	var victim int32
	switch c.cfg.Eviction {
	case EvictRandom:
		victim = c.pickRandom()
	case EvictMerge:
		c.alloc.Unlock()
		return c.merge(now)
	default:
		victim = c.pickOldest()
	}
	if victim < 0 {
		c.alloc.Unlock()
		return false
	}
	c.detach(victim)
	c.alloc.Unlock()
	c.waitWriters(victim)
	r := retain{} // EvictRandom keeps nothing
	if c.cfg.Eviction == EvictFIFO {
		r = retain{budget: c.segSize / 4, cutoff: 1}
	}
	c.scan(victim, now, &r)
	c.release(victim)
	c.segEvicted.Add(1)
	return true
}

// mergeWidth is how many segments a merge eviction takes, as in Segcache.
const mergeWidth = 4

// merge evicts the oldest sealed segment together with up to three more of
// its TTL bucket, keeping the most frequently hit quarter of their bytes.
func (c *Cache) merge(now int64) bool {
	var ids [mergeWidth]int32
	c.alloc.Lock()
	first := c.pickOldest()
	if first < 0 {
		c.alloc.Unlock()
		return false
	}
	n := 1
	ids[0] = first
	c.detach(first)
	bucket := c.segs[first].bucket
	for n < mergeWidth {
		next := int32(-1)
		for i := range c.segs {
			sg := &c.segs[i]
			if sg.state == segSealed && sg.bucket == bucket && (next < 0 || sg.created < c.segs[next].created) {
				next = int32(i)
			}
		}
		if next < 0 {
			break
		}
		c.detach(next)
		ids[n] = next
		n++
	}
	c.alloc.Unlock()
	share := c.segSize / 4
	for _, id := range ids[:n] {
		c.waitWriters(id)
		r := retain{budget: share, cutoff: c.cutoff, halve: true}
		c.scan(id, now, &r)
		c.release(id)
		c.segEvicted.Add(1)
		switch kept := share - r.budget; {
		case r.budget == 0 && c.cutoff < math.MaxUint8:
			c.cutoff++ // ran out of room: be choosier
		case kept < share/2 && c.cutoff > 1:
			c.cutoff--
		}
	}
	return true
}

// pickOldest returns the oldest sealed segment, else the oldest open one.
func (c *Cache) pickOldest() int32 {
	best, bestOpen := int32(-1), int32(-1)
	for i := range c.segs {
		sg := &c.segs[i]
		switch sg.state {
		case segSealed:
			if best < 0 || sg.created < c.segs[best].created {
				best = int32(i)
			}
		case segOpen:
			if bestOpen < 0 || sg.created < c.segs[bestOpen].created {
				bestOpen = int32(i)
			}
		}
	}
	if best < 0 {
		return bestOpen
	}
	return best
}

// pickRandom returns a random sealed segment, else a random open one.
func (c *Cache) pickRandom() int32 {
	n := len(c.segs)
	start := c.rnd.IntN(n)
	for _, want := range [...]uint8{segSealed, segOpen} {
		for i := 0; i < n; i++ {
			id := (start + i) % n
			if c.segs[id].state == want {
				return int32(id)
			}
		}
	}
	return -1
}

// waitWriters waits for puts that reserved space in a detached segment to
// publish their items. They hold only a shard lock and need nothing the
// caller holds, so this ends quickly.
func (c *Cache) waitWriters(id int32) {
	for c.segs[id].writers.Load() != 0 {
		runtime.Gosched()
	}
}

// scan unlinks every live item of detached segment id, copying forward the
// ones r retains. The caller has waited for the segment's writers.
func (c *Cache) scan(id int32, now int64, r *retain) {
	mark := c.flushMark(now)
	sg := &c.segs[id]
	data, used := sg.data, sg.used
	for off := 0; off < used; {
		b := data[off:]
		klen, vlen, koff := lens(b)
		size := koff + klen + vlen
		h := c.hash(b[koff : koff+klen])
		s := c.shardOf(h)
		s.mu.Lock()
		if pos := s.find(h, packSlot(hashTag(h), id, off)); pos >= 0 {
			hd := getHeader(b)
			switch {
			case flushedBy(mark, hd.cas) || (hd.exp != 0 && hd.exp <= now):
				s.st.reclaimed++
				if hd.exp != 0 && hd.exp <= now && hd.bits&bitFetched == 0 {
					s.st.expiredUnfetched++
				}
				c.drop(s, pos, size)
			case hd.freq >= r.cutoff && size <= r.budget && c.copyForward(s, pos, b[:size], &hd, now, r.halve):
				r.budget -= size
				s.st.reinserted++
			default:
				s.st.evictions++
				if hd.bits&bitFetched == 0 {
					s.st.evictedUnfetched++
				}
				c.drop(s, pos, size)
			}
		}
		s.mu.Unlock()
		off += size
	}
}

// drop unlinks an item of a segment being freed (so no dead bytes).
func (c *Cache) drop(s *shard, pos, size int) {
	s.remove(pos)
	s.st.items--
	s.st.bytes -= uint64(size)
}

// copyForward moves the item src at slot pos into the open segment of its
// TTL bucket, with its frequency mark reset or halved. It may use the free segments
// kept in reserve for this. The caller holds s.mu.
func (c *Cache) copyForward(s *shard, pos int, src []byte, hd *header, now int64, halve bool) bool {
	id, off, ok := c.allocFast(len(src), ttlBucket(hd.exp, now), true)
	if !ok {
		return false
	}
	sg := &c.segs[id]
	dst := sg.data[off : off+len(src)]
	copy(dst, src)
	dst[hFreq] = 0
	if halve {
		dst[hFreq] = hd.freq / 2
	}
	sg.noteItem(hd.exp, hd.cas)
	s.slots[pos] = packSlot(slotTag(s.slots[pos]), id, off)
	sg.writers.Add(-1)
	return true
}
