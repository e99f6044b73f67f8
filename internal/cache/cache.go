package cache

// Lock order (also in LOCKS.md at the repository root):
//
//	Cache.evictMu  >  shard.mu (one at a time)  >  Cache.alloc
//	Cache.flushMu: a leaf, taken with no other lock held
//
//   - shard.mu guards one shard of the index, the mutable header fields of
//     the items its slots point at, and that shard's counters. Do holds only
//     the key's shard lock (and briefly alloc to reserve space).
//   - alloc is a leaf: segment states, bump offsets, the free list and the
//     open segment of each TTL bucket. Nothing is acquired while holding it.
//   - evictMu serialises eviction and whole-segment expiry. The evictor takes
//     the shard lock of each item it unlinks, one at a time, so nobody may
//     wait for evictMu, or for memory, while holding a shard lock: a put that
//     finds no free memory marks its key busy, releases its shard lock, makes
//     room, and takes the lock again (see put). Other operations on a busy
//     key wait on the shard's cond, which also releases the lock.
//   - An evictor waits (yielding) for a detached segment's in-flight writers
//     to finish. Writers hold a shard lock but wait for nothing but alloc,
//     so they always finish.

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	defaultMemory  = 64 << 20
	defaultSegment = 1 << 20
	defaultMaxItem = 1 << 20
	minSegments    = 4
	minSegmentLen  = 1 << 10
)

// Cache is the memory tier.
type Cache struct {
	cfg     Config
	seed    maphash.Seed
	shards  []shard
	segSize int
	maxItem int
	reserve int // free segments kept back for eviction's copies

	alloc    sync.Mutex
	segs     []segment
	free     []int32 // stack: freed segments (with memory) are reused first
	open     [nTTLBuckets + 1]int32
	openList []int32 // the open segments
	maxOpen  int     // beyond this many, a new TTL bucket borrows a longer one's segment
	created  uint64
	oom      atomic.Uint64

	evictMu    sync.Mutex
	rnd        *rand.Rand
	victims    []int32 // scratch for reclaim
	cutoff     uint8   // merge eviction's frequency cutoff
	segEvicted atomic.Uint64
	segExpired atomic.Uint64

	cas     atomic.Uint64 // the CAS high-water mark (flush.go)
	flush   atomic.Pointer[flushState]
	flushMu sync.Mutex // serialises flush state changes; a leaf
	bufs    sync.Pool  // *[]byte for values of puts that must make room

	arena   *arena
	cleanup runtime.Cleanup
}

// New returns an empty cache. Zero Config fields take memcached's defaults
// (64 MiB, 1 MiB items). The segment size is raised to fit MaxItemSize; if
// MemoryLimit then holds fewer than 4 segments, segments shrink to a quarter
// of it and MaxItemSize shrinks with them.
func New(cfg Config) (*Cache, error) {
	if cfg.MemoryLimit <= 0 {
		cfg.MemoryLimit = defaultMemory
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = defaultSegment
	}
	if cfg.MaxItemSize <= 0 {
		cfg.MaxItemSize = defaultMaxItem
	}
	seg := (max(cfg.SegmentSize, cfg.MaxItemSize) + 7) &^ 7
	if cfg.MemoryLimit/int64(seg) < minSegments {
		seg = int(cfg.MemoryLimit/minSegments) &^ 7
		cfg.MaxItemSize = min(cfg.MaxItemSize, seg)
	}
	if seg < minSegmentLen {
		return nil, fmt.Errorf("cache: memory limit %d too small (need %d segments of at least %d bytes)", cfg.MemoryLimit, minSegments, minSegmentLen)
	}
	if seg > maxSegmentLen {
		return nil, fmt.Errorf("cache: segment size %d (from max item size %d) above the index limit %d", seg, cfg.MaxItemSize, maxSegmentLen)
	}
	n := cfg.MemoryLimit / int64(seg)
	if n > maxSegments {
		return nil, fmt.Errorf("cache: %d segments of %d bytes is more than the index can address (%d)", n, seg, maxSegments)
	}
	a, err := newArena(int(n), seg)
	if err != nil {
		return nil, err
	}
	c := &Cache{
		arena:   a,
		cfg:     cfg,
		seed:    maphash.MakeSeed(),
		shards:  make([]shard, nShards),
		segSize: seg,
		maxItem: cfg.MaxItemSize,
		segs:    make([]segment, n),
		free:    make([]int32, n),
		rnd:     rand.New(rand.NewPCG(uint64(n), uint64(seg))),
		cutoff:  1,
	}
	c.maxOpen = max(2, len(c.segs)/8)
	if cfg.Eviction == EvictFIFO || cfg.Eviction == EvictMerge {
		c.reserve = 1
	}
	for i := range c.shards {
		c.shards[i].init()
	}
	for i := range c.segs {
		c.segs[i].reset()
		c.free[i] = int32(len(c.segs) - 1 - i) // pop segment 0 first
	}
	for i := range c.open {
		c.open[i] = -1
	}
	c.bufs.New = func() any { return new([]byte) }
	// A cache dropped without Close (tests, the analyzer's simulations)
	// still gives its segment memory back.
	c.cleanup = runtime.AddCleanup(c, func(m memory) { m.release() }, memory{a, c.shards})
	return c, nil
}

// memory is what a cache holds outside the Go heap: its segments and the
// mapped index tables.
type memory struct {
	arena  *arena
	shards []shard
}

func (m memory) release() error {
	freeTables(m.shards)
	return m.arena.release()
}

// Close releases the segment memory and the index. The cache must not be used after
// Close, nor any Item slice from it kept; a second Close does nothing. A
// cache that is dropped without Close releases its memory when the
// garbage collector finds it unreachable.
func (c *Cache) Close() error {
	c.cleanup.Stop()
	return memory{c.arena, c.shards}.release()
}

// hash is the stdlib's maphash: AES-based where the CPU has it, as fast as
// xxh3 on short keys, no dependency, and randomly seeded per cache so that
// clients cannot aim keys at one probe chain. The index is rebuilt at start,
// so a hash that differs between processes costs nothing.
func (c *Cache) hash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

func (c *Cache) shardOf(h uint64) *shard { return &c.shards[h&(nShards-1)] }

// item returns the segment memory from an item's start; the caller holds
// the shard lock of the slot v.
func (c *Cache) item(v uint64) []byte {
	return c.segs[slotSeg(v)].data[slotOff(v):]
}

func (c *Cache) keyOf(v uint64) []byte { return itemKey(c.item(v)) }

func (c *Cache) keyEqual(v uint64, key []byte) bool {
	return string(c.keyOf(v)) == string(key)
}

// Do looks key up under the key's lock and calls fn exactly once with what
// it found; see the contract in api.go.
func (c *Cache) Do(key []byte, now int64, fn func(it Item, l Lookup) (Item, Op)) (uint64, error) {
	// The flush mark is read before the lock: a flush that lands while
	// Do waits for it is concurrent with Do and may be ordered after it.
	mark := c.flushMark(now)
	h := c.hash(key)
	s := c.shardOf(h)
	s.mu.Lock()
	for len(s.busy) != 0 && s.isBusy(h) {
		s.cond.Wait()
	}
	pos, ins := s.lookup(c, h, key)
	l := Miss
	cur := Item{Key: key}
	var hd header
	if pos >= 0 {
		b := c.item(s.slots[pos])
		hd = getHeader(b)
		switch {
		case flushedBy(mark, hd.cas):
			l = Flushed
		case hd.exp != 0 && hd.exp <= now:
			l = Expired
		default:
			l = Hit
			cur.Value = itemValue(b)
			cur.Flags = hd.flags
			cur.Exptime = hd.exp
			cur.CAS = hd.cas
			cur.Atime = int64(hd.atime)
			cur.Fetched = hd.bits&bitFetched != 0
			cur.Stale = hd.bits&bitStale != 0
			cur.WinSent = hd.bits&bitWinSent != 0
		}
		if l != Hit {
			s.st.reclaimed++
			if l == Expired && hd.bits&bitFetched == 0 {
				s.st.expiredUnfetched++
			}
			c.unlink(s, pos, &hd)
			if ins < 0 {
				ins = pos
			}
			pos = -1
		}
	}
	next, op := fn(cur, l)
	switch {
	case op&OpDelete != 0:
		if pos >= 0 {
			c.unlink(s, pos, &hd)
		}
		s.mu.Unlock()
		return 0, nil
	case op&OpPut != 0:
		return c.put(s, h, key, pos, ins, &next, op, now, nil)
	case pos < 0:
		s.mu.Unlock()
		return 0, nil
	}
	if op&OpMeta != 0 {
		if next.Flags != 0 && !hd.hasFlags {
			// The item has no room for flags: store it again with them,
			// keeping its value, CAS and marks.
			if op&OpKeepCAS == 0 {
				next.CAS = hd.cas
			}
			next.Value = cur.Value
			return c.put(s, h, key, pos, ins, &next, op|OpKeepCAS, now, &hd)
		}
		hd.exp = next.Exptime
		hd.flags = next.Flags
		hd.atime = uint32(next.Atime)
		hd.bits = bitsOf(&next)
		if op&OpKeepCAS != 0 {
			hd.cas = next.CAS
			c.noteCAS(hd.cas)
		}
	}
	if op&OpBump != 0 {
		bump(&hd, now)
	}
	if op&(OpMeta|OpBump) != 0 {
		v := s.slots[pos]
		writeMeta(c.item(v), &hd)
		if op&OpMeta != 0 {
			c.segs[slotSeg(v)].noteItem(hd.exp, hd.cas)
		}
	}
	s.mu.Unlock()
	runtime.KeepAlive(c) // the segment memory fn saw is c's
	return hd.cas, nil
}

// bump records an access. The frequency mark rises at most once a second,
// as in Segcache, so a burst of reads does not look like lasting
// popularity.
func bump(hd *header, now int64) {
	if hd.freq == 0 || (int64(hd.atime) != now && hd.freq < math.MaxUint8) {
		hd.freq++
	}
	hd.bits |= bitFetched
	hd.atime = uint32(now)
}

// unlink removes the item at pos from the index and counts its bytes dead
// in its segment. The caller holds s.mu.
func (c *Cache) unlink(s *shard, pos int, hd *header) {
	v := s.slots[pos]
	size := hd.size()
	c.segs[slotSeg(v)].dead.Add(int64(size))
	s.remove(pos)
	s.st.items--
	s.st.bytes -= uint64(size)
}

// put stores next as key's new item and unlocks s. pos is the current item's
// slot (or -1) and ins a free slot on key's probe path. old, when set, is
// the header of the item at pos being stored again by OpMeta (relocation):
// its marks are kept and it does not count as a new item.
func (c *Cache) put(s *shard, h uint64, key []byte, pos, ins int, next *Item, op Op, now int64, old *header) (uint64, error) {
	nh := header{
		cas:      next.CAS,
		exp:      next.Exptime,
		flags:    next.Flags,
		hasFlags: next.Flags != 0,
		atime:    uint32(now),
		bits:     bitsOf(next) &^ bitFetched,
		klen:     len(key),
		vlen:     len(next.Value),
	}
	size := nh.size()
	if size > c.maxItem || len(key) > maxKeyLen {
		s.mu.Unlock()
		return 0, ErrTooLarge
	}
	if old != nil {
		nh.atime, nh.bits, nh.freq = uint32(next.Atime), bitsOf(next), old.freq
	}
	if op&OpKeepCAS == 0 {
		nh.cas = c.nextCAS()
	} else {
		c.noteCAS(nh.cas)
	}
	if op&OpBump != 0 {
		if old != nil {
			bump(&nh, now)
		} else {
			nh.bits |= bitFetched
			nh.freq = 1
		}
	}
	bucket := ttlBucket(nh.exp, now)
	value := next.Value
	id, off, ok := c.allocFast(size, bucket, false)
	if !ok {
		// No free memory: making room takes other shards' locks, so this
		// one is released meanwhile. The value may alias the old item,
		// which eviction may unlink, so it is copied first; the key is
		// marked busy so that no other operation on it can slip in. The
		// CAS was taken above, so the put is ordered as if it had
		// happened now.
		bp := c.bufs.Get().(*[]byte)
		*bp = append((*bp)[:0], value...)
		value = *bp
		defer c.bufs.Put(bp)
		s.busy = append(s.busy, h)
		s.mu.Unlock()
		id, off, ok = c.makeRoom(size, bucket, now)
		s.mu.Lock()
		s.clearBusy(h)
		s.cond.Broadcast()
		if !ok {
			s.mu.Unlock()
			c.oom.Add(1)
			return 0, ErrNoMemory
		}
		pos, ins = s.lookup(c, h, key)
	}
	sg := &c.segs[id]
	b := sg.data[off : off+size]
	putHeader(b, &nh)
	koff := size - nh.klen - nh.vlen
	copy(b[koff:], key)
	copy(b[koff+nh.klen:], value)
	sg.noteItem(nh.exp, nh.cas)
	v := packSlot(hashTag(h), id, off)
	if pos >= 0 {
		// Replace in place: removing first could empty the probe path.
		old := s.slots[pos]
		ob := c.item(old)
		klen, vlen, koff := lens(ob)
		osize := koff + klen + vlen
		c.segs[slotSeg(old)].dead.Add(int64(osize))
		s.slots[pos] = v
		s.st.bytes -= uint64(osize)
	} else {
		s.insert(c, ins, v)
		s.st.items++
	}
	s.st.bytes += uint64(size)
	if old == nil {
		s.st.total++
	}
	sg.writers.Add(-1)
	s.mu.Unlock()
	runtime.KeepAlive(c)
	return nh.cas, nil
}
