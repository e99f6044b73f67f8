package cache

// Segments: fixed-size arenas that items are appended to, never updated in
// place except for their mutable header fields. A segment is free, open (the
// current append target of one TTL bucket), sealed (full or retired), or
// evicting (detached while eviction or expiry unlinks its items). Segment
// memory comes from one reservation outside the Go heap (arena_mmap.go);
// a segment's pages are touched the first time it leaves the free list, so
// a large -m costs nothing until it is used, and a freed segment keeps its
// memory for the next use.

import (
	"math"
	"sync/atomic"
)

const (
	segFree uint8 = iota
	segOpen
	segSealed
	segEvicting
)

// segment is the metadata of one segment. state, bucket, used and created
// are guarded by Cache.alloc; the atomics are updated by item writers under
// their shard lock and read by eviction.
type segment struct {
	data    []byte // nil until first used; then its slice of the arena
	state   uint8
	bucket  int16
	used    int    // bump-allocation offset
	created uint64 // allocation order, for FIFO eviction

	writers atomic.Int32  // items reserved but not yet published
	maxExp  atomic.Int64  // latest exptime of its items; MaxInt64 if one never expires
	maxCAS  atomic.Uint64 // highest CAS of its items, for flush_all
	dead    atomic.Int64  // bytes of items deleted or overwritten
}

func (sg *segment) reset() {
	sg.used = 0
	sg.maxExp.Store(math.MinInt64)
	sg.maxCAS.Store(0)
	sg.dead.Store(0)
}

// noteItem widens the segment's expiry and flush bounds to cover an item.
func (sg *segment) noteItem(exp int64, cas uint64) {
	if exp == 0 {
		exp = math.MaxInt64
	}
	atomicMax(&sg.maxExp, exp)
	atomicMax(&sg.maxCAS, cas)
}

// atomicMax raises a to v unless it already holds more.
func atomicMax[T int64 | uint64, A interface {
	Load() T
	CompareAndSwap(old, new T) bool
}](a A, v T) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// TTL buckets as in Segcache (NSDI'21): four groups of 256 buckets, 8 s,
// 128 s, 2048 s and 32768 s wide (the last bucket also takes anything
// longer, from about 103 days). Items of one bucket share open segments, so
// the items of a segment expire at nearly the same time and the whole
// segment can be freed when its latest exptime passes, without looking at
// its items one by one. Items that never expire have their own bucket.
const (
	nTTLBuckets = 1024
	noTTLBucket = nTTLBuckets
)

func ttlBucket(exp, now int64) int {
	if exp == 0 {
		return noTTLBucket
	}
	ttl := exp - now
	if ttl < 0 {
		ttl = 0
	}
	w := int64(8)
	for g := 0; ; g++ {
		if span := w * 256; ttl >= span && g < 3 {
			ttl -= span
			w *= 16
			continue
		}
		i := ttl / w
		if i > 255 {
			i = 255
		}
		return g*256 + int(i)
	}
}

// allocFast reserves size bytes in the open segment of bucket, opening a
// free segment if needed. It never evicts. Unless evicting is set, it leaves
// c.reserve free segments for eviction to copy items forward into. On
// success the segment's writers count includes the caller, who must write
// the item and then decrement it.
func (c *Cache) allocFast(size, bucket int, evicting bool) (int32, int, bool) {
	c.alloc.Lock()
	id := c.open[bucket]
	if id < 0 && len(c.openList) >= c.maxOpen {
		// Too many buckets already have an open segment: borrow one of
		// a longer TTL. Its expiry bound covers the item, so whole-
		// segment expiry stays correct, only later.
		best := -1
		for _, o := range c.openList {
			sg := &c.segs[o]
			if b := int(sg.bucket); b > bucket && (best < 0 || b < best) && sg.used+size <= c.segSize {
				id, best = o, b
			}
		}
		if best >= 0 {
			bucket = best
		}
	}
	if id >= 0 {
		sg := &c.segs[id]
		if sg.used+size <= c.segSize {
			off := sg.used
			sg.used += size
			sg.writers.Add(1)
			c.alloc.Unlock()
			return id, off, true
		}
		sg.state = segSealed
		c.closeOpen(id)
	}
	keep := c.reserve
	if evicting {
		keep = 0
	}
	if len(c.free) <= keep {
		c.alloc.Unlock()
		return 0, 0, false
	}
	id = c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	sg := &c.segs[id]
	if sg.data == nil {
		sg.data = c.arena.segment(int(id), c.segSize)
	}
	sg.reset()
	sg.state = segOpen
	sg.bucket = int16(bucket)
	sg.used = size
	c.created++
	sg.created = c.created
	sg.writers.Add(1)
	c.open[bucket] = id
	c.openList = append(c.openList, id)
	c.alloc.Unlock()
	return id, 0, true
}

// detach takes a segment out of service before its items are unlinked.
// Called with c.alloc held.
func (c *Cache) detach(id int32) {
	sg := &c.segs[id]
	if sg.state == segOpen {
		c.closeOpen(id)
	}
	sg.state = segEvicting
}

// closeOpen makes open segment id no longer its bucket's append target.
// Called with c.alloc held.
func (c *Cache) closeOpen(id int32) {
	c.open[c.segs[id].bucket] = -1
	for i, o := range c.openList {
		if o == id {
			c.openList[i] = c.openList[len(c.openList)-1]
			c.openList = c.openList[:len(c.openList)-1]
			break
		}
	}
}

// release returns a detached segment, whose items are all unlinked, to the
// free list.
func (c *Cache) release(id int32) {
	c.alloc.Lock()
	sg := &c.segs[id]
	sg.state = segFree
	sg.reset()
	c.free = append(c.free, id)
	c.alloc.Unlock()
}
