package cache

// This file is the contract between the memory tier and its callers (the
// protocol executors in internal/server). The engine behind it is free to
// change; these types and method signatures are not, without updating every
// caller.

import (
	"errors"
	"fmt"
)

// Policy selects what happens when a new item needs memory and none is free.
type Policy uint8

const (
	// EvictFIFO evicts the oldest segment but reinserts (copies forward) the
	// items in it that were hit since they were written. The default.
	EvictFIFO Policy = iota
	// EvictMerge is Segcache-style merge eviction: a few consecutive segments
	// of one TTL bucket are compacted into one, keeping the most-hit items.
	EvictMerge
	// EvictRandom evicts a whole random segment, as Twemcache does.
	EvictRandom
	// EvictNone refuses the write (memcached -M).
	EvictNone
)

var policyNames = [...]string{EvictFIFO: "fifo", EvictMerge: "merge", EvictRandom: "random", EvictNone: "none"}

// String is the policy's configuration name (petrel serve -o eviction=).
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", p)
}

// ParsePolicy is the inverse of Policy.String.
func ParsePolicy(s string) (Policy, error) {
	for p, name := range policyNames {
		if name == s {
			return Policy(p), nil
		}
	}
	return 0, fmt.Errorf("unknown eviction policy %q: want fifo, merge, random or none", s)
}

// Config sizes the memory tier.
type Config struct {
	MemoryLimit int64  // bytes of segment memory (memcached -m); the index is extra and documented
	SegmentSize int    // bytes per segment; default 1 MiB
	MaxItemSize int    // largest key+value+header accepted (memcached -I); default 1 MiB
	Eviction    Policy // default EvictFIFO
	// NextCAS, when set, supplies CAS values for new items (later: the journal
	// sequence). When nil the cache uses its own counter, starting at 1.
	NextCAS func() uint64
}

// Lookup says what Do found for a key.
type Lookup uint8

const (
	Miss    Lookup = iota // no item
	Hit                   // a live item
	Expired               // an item was there but its exptime has passed (counts as a miss)
	Flushed               // an item was there but flush_all invalidated it (counts as a miss)
)

// Item is a copy of an item's header with its key and value. Key and Value
// alias cache memory (or the caller's buffers on the way in) and are only
// valid inside the Do callback.
type Item struct {
	Key     []byte
	Value   []byte
	Flags   uint32 // client flags
	Exptime int64  // absolute unix seconds; 0 means never expires
	CAS     uint64
	Atime   int64 // last access, unix seconds (set on store and on OpBump)
	Fetched bool  // read at least once since stored (memcached ITEM_FETCHED)
	Stale   bool  // invalidated by meta delete with I (served with the X flag)
	WinSent bool  // a meta win token (W) was handed out for this item
}

// Op tells Do what to do with the item after the callback. Bits combine.
type Op uint8

const (
	// OpBump records an access: Fetched=true, Atime=now, and the eviction
	// policy's frequency/hit mark. Without it a read leaves no trace (meta u).
	OpBump Op = 1 << iota
	// OpMeta writes back the header fields Exptime, Flags, Stale, WinSent,
	// Atime and Fetched from the returned Item without changing the value or
	// the CAS (touch, gat, meta stale/win bookkeeping).
	OpMeta
	// OpPut stores the returned Item (Key, Value, Flags, Exptime, and the
	// Stale/WinSent bits) as a new version with a fresh CAS.
	OpPut
	// OpKeepCAS, with OpPut or OpMeta, uses the returned Item.CAS instead of a
	// fresh one (meta E flag; journal replay).
	OpKeepCAS
	// OpDelete removes the item.
	OpDelete
)

// Errors returned by Do when an OpPut cannot be carried out. ErrTooLarge
// also answers a key over 255 bytes (the protocols stop at 250).
var (
	ErrTooLarge = errors.New("object too large for cache")
	ErrNoMemory = errors.New("out of memory storing object")
)

// Stats is a snapshot of the memory tier, for `stats` and metrics.
type Stats struct {
	CurrItems        uint64 // live items in the index
	TotalItems       uint64 // items ever stored
	Bytes            uint64 // bytes of live items (header+flags+key+value, unpadded)
	LimitBytes       uint64 // Config.MemoryLimit
	Evictions        uint64 // live items removed to make room
	Reclaimed        uint64 // expired items whose memory was reused
	ExpiredUnfetched uint64 // items expired without ever being fetched
	EvictedUnfetched uint64 // items evicted without ever being fetched
	OutOfMemory      uint64 // puts refused for lack of memory
	Reinserted       uint64 // items copied forward by eviction (FIFO reinsertion / merge)

	SegmentSize      uint64
	SegmentsTotal    uint64 // segments the memory limit allows
	SegmentsFree     uint64 // on the free list
	SegmentsOpen     uint64 // being appended to
	SegmentsSealed   uint64 // full, holding live or dead items
	SegmentBytesDead uint64 // bytes in sealed segments whose items are gone (fragmentation)
	SegmentsEvicted  uint64 // segments evicted so far
	SegmentsExpired  uint64 // segments freed whole because every item expired

	IndexSlots uint64 // slots in the hash index
	IndexBytes uint64 // memory of the index
}

// The engine implements:
//
//	func New(cfg Config) (*Cache, error)
//
//	// Do looks key up under the key's lock and calls fn exactly once with
//	// what it found (it.Key is set to key even on a miss). fn returns the item
//	// to write back and what to do with it. Do returns the CAS of the item
//	// after the operation (0 if none) and ErrTooLarge/ErrNoMemory when an
//	// OpPut fails (the old item is then left as it was). fn must not call
//	// back into the Cache. now is unix seconds (the clock is passed in).
//	// Steady-state Do allocates nothing.
//	func (c *Cache) Do(key []byte, now int64, fn func(it Item, l Lookup) (Item, Op)) (uint64, error)
//
//	// FlushAll invalidates every item stored at or before `at` once now >= at
//	// (memcached flush_all with a delay; at=now for an immediate flush).
//	func (c *Cache) FlushAll(now, at int64)
//
//	// FlushBelow is an immediate flush of the items whose CAS is below
//	// mark, for a caller whose CAS values carry an order of their own
//	// (journal sequences).
//	func (c *Cache) FlushBelow(now int64, mark uint64)
//
//	func (c *Cache) Stats() Stats
//
//	// Maintain does background work (expire whole segments); the server calls
//	// it about once a second.
//	func (c *Cache) Maintain(now int64)

// OffHeap reports whether segment memory lives outside the Go heap, where
// GOMEMLIMIT does not count it: true except in race detector builds.
func OffHeap() bool { return offHeap }
