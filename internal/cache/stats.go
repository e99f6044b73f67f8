package cache

// Stats returns a snapshot of the memory tier. It takes each shard lock in
// turn, then the allocator lock, so the figures are each exact but not all
// from one instant.
func (c *Cache) Stats() Stats {
	st := Stats{
		LimitBytes:      uint64(c.cfg.MemoryLimit),
		SegmentSize:     uint64(c.segSize),
		SegmentsTotal:   uint64(len(c.segs)),
		OutOfMemory:     c.oom.Load(),
		SegmentsEvicted: c.segEvicted.Load(),
		SegmentsExpired: c.segExpired.Load(),
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.CurrItems += s.st.items
		st.TotalItems += s.st.total
		st.Bytes += s.st.bytes
		st.Evictions += s.st.evictions
		st.Reclaimed += s.st.reclaimed
		st.ExpiredUnfetched += s.st.expiredUnfetched
		st.EvictedUnfetched += s.st.evictedUnfetched
		st.Reinserted += s.st.reinserted
		st.IndexSlots += uint64(len(s.slots))
		s.mu.Unlock()
	}
	st.IndexBytes = st.IndexSlots * 8
	c.alloc.Lock()
	for i := range c.segs {
		sg := &c.segs[i]
		switch sg.state {
		case segFree:
			st.SegmentsFree++
		case segOpen:
			st.SegmentsOpen++
		default:
			st.SegmentsSealed++
			st.SegmentBytesDead += uint64(sg.dead.Load())
		}
	}
	c.alloc.Unlock()
	return st
}

// BucketStats describes the segments of one TTL bucket, for a Twemcache-like
// `stats slabs` where TTL buckets take the place of slab classes.
type BucketStats struct {
	Bucket   int   // 0..1023, or 1024 for items that never expire
	TTLMin   int64 // seconds; the bucket holds TTLs in [TTLMin, TTLMax)
	TTLMax   int64 // 0 for the no-expiry bucket; the last bucket is unbounded
	Segments uint64
	Open     uint64 // of Segments, open for appends
	Used     uint64 // bytes appended (live and dead)
	Dead     uint64 // bytes of deleted, overwritten or expired-and-unlinked items
}

// TTLBuckets returns the buckets that have segments, in bucket order.
func (c *Cache) TTLBuckets() []BucketStats {
	var per [nTTLBuckets + 1]BucketStats
	c.alloc.Lock()
	for i := range c.segs {
		sg := &c.segs[i]
		if sg.state == segFree {
			continue
		}
		b := &per[sg.bucket]
		b.Segments++
		if sg.state == segOpen {
			b.Open++
		}
		b.Used += uint64(sg.used)
		b.Dead += uint64(sg.dead.Load())
	}
	c.alloc.Unlock()
	var out []BucketStats
	for i := range per {
		if per[i].Segments == 0 {
			continue
		}
		b := per[i]
		b.Bucket = i
		b.TTLMin, b.TTLMax = bucketRange(i)
		out = append(out, b)
	}
	return out
}

// bucketRange is the TTL range [min, max) of a bucket (see ttlBucket).
func bucketRange(b int) (lo, hi int64) {
	if b == noTTLBucket {
		return 0, 0
	}
	w, start := int64(8), int64(0)
	for range b / 256 {
		start += w * 256
		w *= 16
	}
	lo = start + int64(b%256)*w
	return lo, lo + w
}

// MaxItemSize is the largest item (header+key+value) a put accepts, which
// is Config.MaxItemSize unless a small MemoryLimit made segments smaller.
func (c *Cache) MaxItemSize() int { return c.maxItem }
