// Package cache is Petrel's memory tier: a segment-structured item store
// after Segcache (Yang et al., "Segcache: a memory-efficient and scalable
// in-memory key-value cache for small objects", NSDI'21), with Twemcache's
// random slab eviction as an alternative policy.
//
// # Layout
//
// Items are appended back to back, unaligned, into fixed-size segments
// (Config SegmentSize, 1 MiB by default): a 23-byte header (key and value
// lengths, the fetched/stale/win bits, a frequency mark, CAS, exptime and
// atime), the client flags only when they are non-zero, the key and the
// value (layout.go). A 36-byte key with a 224-byte value takes 283 bytes,
// where memcached's takes a 384-byte slab chunk. The index is an
// open-addressing table of packed 64-bit slots (a 14-bit hash tag, the
// segment id and the byte offset), cut into 256 shards (index.go). Neither
// holds a Go pointer per item, so the garbage collector sees a few hundred
// slices however many items there are.
//
// # Memory
//
// Segment memory never exceeds Config.MemoryLimit: the cache has
// MemoryLimit/SegmentSize segments in one anonymous mapping outside the Go
// heap (arena_mmap.go), whose pages the kernel supplies when a segment is
// first used, so -m 1024 costs nothing at start; Close unmaps it. Index
// tables of 512 slots (a page) and more are mapped as well, and a rehash
// unmaps the old table at once. The garbage collector therefore neither
// scans nor counts item or index memory, and the heap holds only buffers
// (internal/server sets GOMEMLIMIT accordingly).
//
// On top of the segments come the fixed overheads: the index, 8 bytes per
// slot at a load of 7/10 to 7/8 (9.1 to 11.4 bytes per item;
// Stats.IndexBytes), and about 100 bytes of metadata per segment. Measured
// (bench/results/2026-11-21-memory, -m 1024, 36-byte keys and 224-byte
// values): 3.79M items stored in 1,095 MiB of RSS, 303 B per item against
// memcached's 392 (0.77x): the 283-byte item, and 19.7 B per item beyond
// the segments, about 10 B of it index and the rest (35 MiB) the program,
// its heap and its stacks, a fixed cost that shrinks per item as -m grows.
// The floor, item plus index, is about 293 B (0.75x).
//
// An item never spans segments, so the segment size is raised to
// MaxItemSize (which counts the header): -I 128m gives 128 MiB segments. If
// the memory limit then holds fewer than four segments, the segments shrink
// to a quarter of the limit and MaxItemSize with them. Puts above
// MaxItemSize, or with keys over 255 bytes, fail with ErrTooLarge. FIFO and
// merge eviction keep one segment free for eviction to copy hit items into,
// so on a tiny cache (-m 2 has four segments) a quarter of the memory waits
// in reserve.
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
// flush_all is ordered by CAS (flush.go): every CAS raises one high-water
// mark, an immediate flush records it, and items at or below it read as
// Flushed, so an item stored after the flush in the same second survives.
// A delayed flush takes, as in memcached, everything stored up to the end
// of its second, and records its mark when a later second is first seen.
package cache
