// Package cache is Petrel's memory tier: a segment-structured item store
// after Segcache (Yang et al., "Segcache: a memory-efficient and scalable
// in-memory key-value cache for small objects", NSDI'21), with Twemcache's
// random slab eviction as an alternative policy.
//
// # Layout
//
// Items are appended back to back into fixed-size segments (Config
// SegmentSize, 1 MiB by default): a 48-byte header (CAS, store sequence,
// exptime, client flags, store and access times, the fetched/stale/win bits
// and a frequency mark), the key, the value, padded to 8 bytes (layout.go).
// The index is a flat open-addressing table of packed 64-bit slots (a 16-bit
// hash tag, the segment id and the item offset), cut into 256 shards
// (index.go). Neither holds a Go pointer per item, so the garbage collector
// sees a few hundred slices however many items there are.
//
// # Memory
//
// Segment memory never exceeds Config.MemoryLimit: the cache has
// MemoryLimit/SegmentSize segments, and a segment's []byte is allocated the
// first time it is used, so -m 1024 costs nothing at start. On top of that
// come fixed overheads: the index, 8 bytes per slot at a load of 3/8 to 3/4
// (about 11 to 21 bytes per item; Stats.IndexBytes), and about 100 bytes of
// metadata per segment. An item never spans segments, so the segment size
// is raised to MaxItemSize (which counts the header): -I 128m gives 128 MiB
// segments. If the memory limit then holds fewer than four segments, the
// segments shrink to a quarter of the limit and MaxItemSize with them. Puts
// above MaxItemSize fail with ErrTooLarge. FIFO and merge eviction keep one
// segment free for eviction to copy hit items into, so on a tiny cache
// (-m 2 has four segments) a quarter of the memory waits in reserve.
//
// # Expiry
//
// Expired items are never returned: Do checks exptime and reports Expired.
// Memory comes back a whole segment at a time. Items are appended to an
// open segment of their TTL bucket (Segcache's 1024 buckets, segment.go), so
// the items of a segment expire together, and a sealed segment whose latest
// exptime has passed (or whose items flush_all has all invalidated, or whose
// items have all been deleted or overwritten) is freed by Maintain or by a
// put that needs memory, after unlinking what is left of it from the index.
// When more than 1/8 of the segments would be open at once, a new TTL bucket
// shares the open segment of a longer one rather than taking a segment.
//
// # Eviction
//
// See evict.go. EvictFIFO (default) evicts the oldest segment and copies
// forward the items read since they were written; EvictMerge merges four
// segments of one TTL bucket into one, keeping the most-hit items
// (Segcache); EvictRandom evicts a random segment (Twemcache); EvictNone
// refuses the put. Because memory is managed in whole segments of mixed item
// sizes, there are no slab classes to calcify when item sizes change.
//
// # Concurrency
//
// Do holds only the key's shard lock, plus the allocator lock for the few
// instructions that reserve space. The lock order is written at the top of
// cache.go and in LOCKS.md.
//
// # Flush
//
// flush_all records a time and, for an immediate flush, the current store
// sequence, so an item stored after the flush in the same second survives;
// lookups of invalidated items report Flushed.
package cache
