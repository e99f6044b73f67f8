package cache

// The index is a flat open-addressing hash table of packed 64-bit slots, cut
// into shards (one lock each). A slot holds no Go pointer, so a cache of
// millions of items is a few hundred []uint64 for the garbage collector.
//
//	bits 63..50  tag: the top 14 bits of the key's hash, to skip most
//	             non-matching slots without touching segment memory
//	bits 49..28  segment id + 1 (0 marks an empty or deleted slot)
//	bits 27..0   item offset in the segment (items are not aligned)
//
// So a cache has at most 2^22-1 segments (4 TiB of 1 MiB segments) and a
// segment is at most 256 MiB. Probing is linear from a home position that
// maps 32 bits of the hash onto the table by a multiply (Lemire's "fast
// range"), so a table need not be a power of two. A deleted slot becomes a
// tombstone unless the slot after it is empty, in which case it and the
// tombstones just before it become empty again.
//
// A shard rehashes when live+tombstone slots pass 7/8 of its size, into
// 10/7 of its live count: between growths it is 7/10 to 7/8 full, 9.1 to
// 11.4 B of index per item, where powers of two growing at 3/4 gave 10.7 to
// 21 B. Growing by 1.25x rather than 2x moves each item about four times
// instead of twice while the cache fills, and never once it is full.
// Linear probing at such loads keeps probes short because the tag filter
// makes a probed slot cost one compare in a cache line already loaded:
// TestProbeLength measures 2.3 to 3 slots per hit and 7 to 13 per miss
// (Knuth's 1/2(1+1/(1-a)) and 1/2(1+1/(1-a)^2) give 4.5 and 32.5 at 7/8,
// where a table spends little time). The slot does not keep the full hash, so
// rehashing reads each key back from its segment and hashes it again. Only
// that shard's lock is held meanwhile: with 256 shards a rehash moves 1/256
// of the index, so the pause is short and local.

import "sync"

const (
	tagShift = 50
	segShift = 28
	segMask  = 1<<22 - 1
	offMask  = 1<<28 - 1

	maxSegments   = segMask // segment ids 0..segMask-1 (stored +1)
	maxSegmentLen = offMask + 1

	tombstone = 1 // seg field 0, so never a real slot

	shardBits = 8
	nShards   = 1 << shardBits
	minSlots  = 16
)

func packSlot(tag uint16, seg int32, off int) uint64 {
	return uint64(tag)<<tagShift | uint64(seg+1)<<segShift | uint64(off)
}

func slotTag(v uint64) uint16 { return uint16(v >> tagShift) }
func slotSeg(v uint64) int32  { return int32(v>>segShift&segMask) - 1 }
func slotOff(v uint64) int    { return int(v & offMask) }

func hashTag(h uint64) uint16 { return uint16(h >> tagShift) }

// shard is one lock stripe of the index, with the counters only its lock
// holder writes.
type shard struct {
	mu     sync.Mutex
	cond   sync.Cond // signalled when a busy key (see Cache.put) is done
	slots  []uint64
	n      uint64 // len(slots)
	mapped bool   // slots is mapped memory (allocSlots)
	live   int
	tombs  int
	// busy holds the hashes of keys whose put released the lock to make
	// room; other operations on those keys wait on cond.
	busy []uint64
	st   shardStats
	_    [64]byte // keep neighbouring shards' locks off one cache line
}

type shardStats struct {
	items, bytes, total                    uint64
	evictions, reclaimed, expiredUnfetched uint64
	evictedUnfetched, reinserted           uint64
}

func (s *shard) init() {
	s.cond.L = &s.mu
	s.slots = make([]uint64, minSlots)
	s.n = minSlots
}

// home maps hash bits 8..39 (above the shard bits, below the tag) onto the
// table.
func (s *shard) home(h uint64) uint64 { return (h >> shardBits & (1<<32 - 1)) * s.n >> 32 }

func (s *shard) next(i uint64) uint64 {
	if i++; i == s.n {
		return 0
	}
	return i
}

func (s *shard) prev(i uint64) uint64 {
	if i == 0 {
		return s.n - 1
	}
	return i - 1
}

// lookup finds key. It returns the slot position holding it (or -1) and the
// first free position on its probe path, where it can be inserted.
func (s *shard) lookup(c *Cache, h uint64, key []byte) (pos, ins int) {
	tag := hashTag(h)
	ins = -1
	for i := s.home(h); ; i = s.next(i) {
		v := s.slots[i]
		switch {
		case v == 0:
			if ins < 0 {
				ins = int(i)
			}
			return -1, ins
		case v == tombstone:
			if ins < 0 {
				ins = int(i)
			}
		case slotTag(v) == tag && c.keyEqual(v, key):
			return int(i), ins
		}
	}
}

// find returns the position of the slot whose value is exactly v, or -1.
func (s *shard) find(h, v uint64) int {
	for i := s.home(h); ; i = s.next(i) {
		switch s.slots[i] {
		case v:
			return int(i)
		case 0:
			return -1
		}
	}
}

// insert puts v at ins (a free position from lookup) and grows the shard if
// it is now too full.
func (s *shard) insert(c *Cache, ins int, v uint64) {
	if s.slots[ins] == tombstone {
		s.tombs--
	}
	s.slots[ins] = v
	s.live++
	if (s.live+s.tombs)*8 > len(s.slots)*7 {
		s.rehash(c)
	}
}

// remove empties position pos.
func (s *shard) remove(pos int) {
	s.live--
	if s.slots[s.next(uint64(pos))] != 0 {
		s.slots[pos] = tombstone
		s.tombs++
		return
	}
	// Nothing probes past an empty slot, so this slot and the tombstones
	// right before it can be emptied.
	s.slots[pos] = 0
	for i := s.prev(uint64(pos)); s.slots[i] == tombstone; i = s.prev(i) {
		s.slots[i] = 0
		s.tombs--
	}
}

func (s *shard) rehash(c *Cache) { s.resize(c, max(minSlots, s.live*10/7)) }

// Reserve makes room in the index for items more without growing it: a
// caller about to load many items (the warm-up after a restart) saves the
// growths the table would otherwise go through, each of which moves every
// item, reading its key back from segment memory, and unmaps the old
// table. The estimate is capped at what the memory limit can hold at 64
// bytes an item, so a wild one costs at most an index sized for that.
func (c *Cache) Reserve(items int) {
	items = min(items, int(c.cfg.MemoryLimit/64))
	per := items/nShards + items/nShards/8 // shards fill unevenly
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if n := (s.live + per) * 10 / 7; n > len(s.slots) {
			s.resize(c, n)
		}
		s.mu.Unlock()
	}
}

// resize moves the shard's items into a table of n slots.
func (s *shard) resize(c *Cache, n int) {
	old, oldMapped := s.slots, s.mapped
	s.slots, s.mapped = allocSlots(n)
	s.n = uint64(n)
	s.tombs = 0
	for _, v := range old {
		if v <= tombstone {
			continue
		}
		h := c.hash(c.keyOf(v))
		i := s.home(h)
		for s.slots[i] != 0 {
			i = s.next(i)
		}
		s.slots[i] = v
	}
	freeSlots(old, oldMapped)
}

// freeTables gives back the shards' mapped tables (Cache.Close, or the
// cleanup of a cache dropped without it).
func freeTables(shards []shard) {
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		freeSlots(s.slots, s.mapped)
		s.slots, s.n, s.mapped = nil, 0, false
		s.mu.Unlock()
	}
}

func (s *shard) isBusy(h uint64) bool {
	for _, b := range s.busy {
		if b == h {
			return true
		}
	}
	return false
}

func (s *shard) clearBusy(h uint64) {
	for i, b := range s.busy {
		if b == h {
			s.busy[i] = s.busy[len(s.busy)-1]
			s.busy = s.busy[:len(s.busy)-1]
			return
		}
	}
}
