package cache

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"
)

func newTest(t testing.TB, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func set(t testing.TB, c *Cache, key string, val []byte, exp, now int64) uint64 {
	t.Helper()
	cas, err := c.Do([]byte(key), now, func(it Item, l Lookup) (Item, Op) {
		return Item{Value: val, Exptime: exp}, OpPut
	})
	if err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
	return cas
}

// get returns the value (copied) and what Do found, bumping the item.
func get(c *Cache, key string, now int64) ([]byte, Lookup) {
	var v []byte
	var got Lookup
	c.Do([]byte(key), now, func(it Item, l Lookup) (Item, Op) {
		v, got = bytes.Clone(it.Value), l
		return it, OpBump
	})
	return v, got
}

func TestNewConfig(t *testing.T) {
	f := func(cfg Config, seg, maxItem, segs int) {
		t.Helper()
		c := newTest(t, cfg)
		st := c.Stats()
		if c.segSize != seg || c.MaxItemSize() != maxItem || int(st.SegmentsTotal) != segs {
			t.Errorf("%+v: segment %d, max item %d, segments %d; want %d %d %d",
				cfg, c.segSize, c.maxItem, st.SegmentsTotal, seg, maxItem, segs)
		}
		if uint64(c.segSize)*st.SegmentsTotal > uint64(c.cfg.MemoryLimit) {
			t.Errorf("%+v: segments exceed the memory limit", cfg)
		}
	}
	f(Config{}, 1<<20, 1<<20, 64)
	f(Config{MemoryLimit: 1 << 30}, 1<<20, 1<<20, 1024)
	f(Config{MemoryLimit: 1 << 30, MaxItemSize: 8 << 20}, 8<<20, 8<<20, 128)
	f(Config{MemoryLimit: 1 << 30, SegmentSize: 64 << 10, MaxItemSize: 4 << 10}, 64<<10, 4<<10, 16384)
	f(Config{MemoryLimit: 1 << 20}, 256<<10, 256<<10, 4) // small -m: segments shrink
	if _, err := New(Config{MemoryLimit: 1000}); err == nil {
		t.Error("a 1000-byte cache was accepted")
	}
}

func TestLazySegments(t *testing.T) {
	c := newTest(t, Config{MemoryLimit: 1 << 30})
	set(t, c, "a", []byte("1"), 0, 100)
	allocated := 0
	for i := range c.segs {
		if c.segs[i].data != nil {
			allocated++
		}
	}
	if allocated != 1 {
		t.Errorf("%d segments allocated after one set, want 1", allocated)
	}
	if st := c.Stats(); st.SegmentsFree != st.SegmentsTotal-1 || st.SegmentsOpen != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestBasicOps(t *testing.T) {
	c := newTest(t, Config{})
	const now = 1000
	if _, l := get(c, "k", now); l != Miss {
		t.Fatalf("empty cache: %v", l)
	}
	cas := set(t, c, "k", []byte("v1"), 0, now)
	var it0 Item
	c.Do([]byte("k"), now, func(it Item, l Lookup) (Item, Op) { it0 = it; it0.Value = bytes.Clone(it.Value); return it, 0 })
	if string(it0.Value) != "v1" || it0.CAS != cas || it0.Fetched || string(it0.Key) != "k" || it0.Atime != now {
		t.Fatalf("after set: %+v (cas %d)", it0, cas)
	}
	// A read without OpBump leaves no trace; with it the item is fetched.
	get(c, "k", now+5)
	c.Do([]byte("k"), now+6, func(it Item, l Lookup) (Item, Op) { it0 = it; return it, 0 })
	if !it0.Fetched || it0.Atime != now+5 || it0.CAS != cas {
		t.Fatalf("after bump: %+v", it0)
	}
	// OpMeta changes header fields, not the value or CAS.
	got, _ := c.Do([]byte("k"), now, func(it Item, l Lookup) (Item, Op) {
		it.Flags, it.Exptime, it.Stale, it.WinSent = 42, now+100, true, true
		return it, OpMeta
	})
	c.Do([]byte("k"), now, func(it Item, l Lookup) (Item, Op) { it0 = it; it0.Value = bytes.Clone(it.Value); return it, 0 })
	if got != cas || it0.CAS != cas || it0.Flags != 42 || it0.Exptime != now+100 || !it0.Stale || !it0.WinSent || string(it0.Value) != "v1" {
		t.Fatalf("after meta: %+v (returned cas %d)", it0, got)
	}
	// OpMeta|OpKeepCAS sets the CAS given.
	got, _ = c.Do([]byte("k"), now, func(it Item, l Lookup) (Item, Op) { it.CAS = 555; return it, OpMeta | OpKeepCAS })
	if got != 555 {
		t.Fatalf("meta keep cas returned %d", got)
	}
	// Overwrite gets a fresh CAS and clears fetched.
	cas2 := set(t, c, "k", []byte("v2"), 0, now)
	c.Do([]byte("k"), now, func(it Item, l Lookup) (Item, Op) { it0 = it; it0.Value = bytes.Clone(it.Value); return it, 0 })
	if cas2 == cas || cas2 == 555 || it0.CAS != cas2 || it0.Fetched || string(it0.Value) != "v2" {
		t.Fatalf("after overwrite: %+v cas %d", it0, cas2)
	}
	// Delete.
	if got, _ := c.Do([]byte("k"), now, func(it Item, l Lookup) (Item, Op) { return it, OpDelete }); got != 0 {
		t.Fatalf("delete returned cas %d", got)
	}
	if _, l := get(c, "k", now); l != Miss {
		t.Fatalf("after delete: %v", l)
	}
	st := c.Stats()
	if st.CurrItems != 0 || st.TotalItems != 2 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestValueCannotOverrunItem(t *testing.T) {
	c := newTest(t, Config{})
	set(t, c, "a", []byte("aaaa"), 0, 1)
	set(t, c, "b", []byte("bbbb"), 0, 1)
	c.Do([]byte("a"), 1, func(it Item, l Lookup) (Item, Op) {
		_ = append(it.Value, "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"...)
		return it, 0
	})
	if v, _ := get(c, "b", 1); string(v) != "bbbb" {
		t.Fatalf("b = %q after an append to a's value", v)
	}
}

func TestNextCASAndKeepCAS(t *testing.T) {
	n := uint64(1000)
	c := newTest(t, Config{NextCAS: func() uint64 { n += 10; return n }})
	if cas := set(t, c, "a", []byte("x"), 0, 1); cas != 1010 {
		t.Fatalf("cas %d, want 1010", cas)
	}
	cas, _ := c.Do([]byte("b"), 1, func(it Item, l Lookup) (Item, Op) {
		return Item{Value: []byte("y"), CAS: 7}, OpPut | OpKeepCAS
	})
	if cas != 7 {
		t.Fatalf("kept cas %d, want 7", cas)
	}
}

func TestExpiry(t *testing.T) {
	c := newTest(t, Config{})
	set(t, c, "k", []byte("v"), 110, 100)
	if _, l := get(c, "k", 109); l != Hit {
		t.Fatalf("before exptime: %v", l)
	}
	if _, l := get(c, "k", 110); l != Expired {
		t.Fatalf("at exptime: %v", l)
	}
	if _, l := get(c, "k", 110); l != Miss {
		t.Fatalf("expired items are removed: %v", l)
	}
	if st := c.Stats(); st.ExpiredUnfetched != 0 || st.Reclaimed != 1 || st.CurrItems != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFlushAll(t *testing.T) {
	c := newTest(t, Config{})
	set(t, c, "old", []byte("v"), 0, 100)
	c.FlushAll(100, 100)
	set(t, c, "new", []byte("v"), 0, 100) // same second, after the flush
	if _, l := get(c, "old", 100); l != Flushed {
		t.Errorf("old: %v, want Flushed", l)
	}
	if _, l := get(c, "new", 100); l != Hit {
		t.Errorf("new: %v, want Hit", l)
	}
	// A delayed flush takes every item stored up to its time, once due.
	c.FlushAll(100, 110)
	set(t, c, "later", []byte("v"), 0, 105)
	if _, l := get(c, "later", 109); l != Hit {
		t.Errorf("before the delayed flush: %v", l)
	}
	if _, l := get(c, "new", 110); l != Flushed {
		t.Errorf("new after the delayed flush: %v", l)
	}
	if _, l := get(c, "later", 110); l != Flushed {
		t.Errorf("later after the delayed flush: %v", l)
	}
	// As in memcached, what is stored during the flush's second goes too.
	set(t, c, "during", []byte("v"), 0, 110)
	if _, l := get(c, "during", 110); l != Flushed {
		t.Errorf("during the delayed flush's second: %v", l)
	}
	set(t, c, "during", []byte("v"), 0, 110)
	set(t, c, "after", []byte("v"), 0, 111)
	if _, l := get(c, "after", 111); l != Hit {
		t.Errorf("after: %v", l)
	}
	if _, l := get(c, "during", 111); l != Flushed {
		t.Errorf("during, a second later: %v", l)
	}
	// An immediate flush is ordered by store sequence, not by the second
	// each connection read from the clock.
	set(t, c, "skew", []byte("v"), 0, 116)
	c.FlushAll(115, 115)
	if _, l := get(c, "skew", 114); l != Flushed {
		t.Errorf("skew: %v, want Flushed", l)
	}
	// A new delayed flush does not bring back what a past flush removed.
	set(t, c, "x", []byte("v"), 0, 120)
	c.FlushAll(121, 121)
	c.FlushAll(122, 200)
	if _, l := get(c, "x", 123); l != Flushed {
		t.Errorf("x: %v, want Flushed", l)
	}
}

// TestFlushBelow: a flush at a chosen CAS drops the items below it and
// keeps those above, in whatever order they reach the cache, as journal
// sequences order them.
func TestFlushBelow(t *testing.T) {
	c := newTest(t, Config{})
	put := func(key string, cas uint64) {
		t.Helper()
		if _, err := c.Do([]byte(key), 100, func(Item, Lookup) (Item, Op) {
			return Item{Value: []byte("v"), CAS: cas}, OpPut | OpKeepCAS
		}); err != nil {
			t.Fatal(err)
		}
	}
	f := func(key string, want Lookup) {
		t.Helper()
		if _, l := get(c, key, 100); l != want {
			t.Errorf("%s: %v, want %v", key, l, want)
		}
	}
	put("before", 9)
	put("after-early", 12) // stored before the flush, sequenced after it
	c.FlushAll(100, 150)   // a delayed flush, replaced by the one below
	c.FlushBelow(100, 10)
	put("before-late", 8) // sequenced before the flush, stored after it
	put("after", 11)
	f("before", Flushed)
	f("before-late", Flushed)
	f("after-early", Hit)
	f("after", Hit)
	if _, l := get(c, "after", 151); l != Hit {
		t.Errorf("after, past the replaced delayed flush: %v, want Hit", l)
	}
	// The internal counter draws above the mark.
	if cas := set(t, c, "drawn", []byte("v"), 0, 100); cas <= 12 {
		t.Errorf("a CAS drawn after FlushBelow(10) with 12 stored: %d", cas)
	}
}

func TestTooLarge(t *testing.T) {
	c := newTest(t, Config{MaxItemSize: 4096})
	set(t, c, "k", []byte("small"), 0, 1)
	_, err := c.Do([]byte("k"), 1, func(it Item, l Lookup) (Item, Op) {
		return Item{Value: make([]byte, 4096)}, OpPut
	})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if v, _ := get(c, "k", 1); string(v) != "small" {
		t.Fatalf("old item changed to %q", v)
	}
	// Exactly the limit fits, header included.
	set(t, c, "k", make([]byte, 4096-hdrSize-1), 0, 1)
}

func TestLargeItems(t *testing.T) {
	const max = 4 << 20
	c := newTest(t, Config{MemoryLimit: 32 << 20, MaxItemSize: max})
	for i := range 12 {
		v := bytes.Repeat([]byte{byte(i)}, max-hdrSize-10)
		set(t, c, fmt.Sprint("big", i), v, 0, 1)
		if got, l := get(c, fmt.Sprint("big", i), 1); l != Hit || !bytes.Equal(got, v) {
			t.Fatalf("big%d: %v", i, l)
		}
	}
	if st := c.Stats(); st.SegmentsEvicted == 0 {
		t.Fatalf("12 items of 4 MiB in 32 MiB evicted nothing: %+v", st)
	}
}

func TestEvictNone(t *testing.T) {
	c := newTest(t, Config{MemoryLimit: 64 << 10, SegmentSize: 16 << 10, MaxItemSize: 4 << 10, Eviction: EvictNone})
	v := make([]byte, 1000)
	var stored int
	var err error
	for i := 0; err == nil; i++ {
		_, err = c.Do([]byte(fmt.Sprint("k", i)), 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: v}, OpPut })
		if err == nil {
			stored++
		}
	}
	if !errors.Is(err, ErrNoMemory) || stored < 40 {
		t.Fatalf("stored %d then %v", stored, err)
	}
	// The old item survives a failed overwrite, and nothing was evicted.
	_, err = c.Do([]byte("k0"), 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: v[:999]}, OpPut })
	if !errors.Is(err, ErrNoMemory) {
		t.Fatalf("overwrite: %v", err)
	}
	if got, l := get(c, "k0", 1); l != Hit || len(got) != 1000 {
		t.Fatalf("k0: %v len %d", l, len(got))
	}
	st := c.Stats()
	if st.Evictions != 0 || st.OutOfMemory != 2 || st.CurrItems != uint64(stored) {
		t.Fatalf("stats %+v", st)
	}
	// Expired memory comes back even without eviction.
	for i := range stored {
		c.Do([]byte(fmt.Sprint("k", i)), 1, func(it Item, l Lookup) (Item, Op) { return it, OpDelete })
	}
	set(t, c, "fresh", v, 0, 1)
}

func TestWholeSegmentExpiry(t *testing.T) {
	c := newTest(t, Config{MemoryLimit: 1 << 20, SegmentSize: 16 << 10, MaxItemSize: 4 << 10})
	v := make([]byte, 500)
	for i := range 200 { // about 6 segments of items that expire at 110
		set(t, c, fmt.Sprint("t", i), v, 110, 100)
	}
	set(t, c, "forever", v, 0, 100)
	if bs := c.TTLBuckets(); len(bs) != 2 || bs[0].Bucket != 1 || bs[0].TTLMin != 8 || bs[0].Segments < 6 || bs[0].Open != 1 {
		t.Fatalf("buckets: %+v", bs)
	}
	c.Maintain(105)
	if st := c.Stats(); st.SegmentsExpired != 0 || st.CurrItems != 201 {
		t.Fatalf("before expiry: %+v", st)
	}
	c.Maintain(110)
	st := c.Stats()
	if st.SegmentsExpired < 5 || st.ExpiredUnfetched < 150 || st.Reclaimed < 150 {
		t.Fatalf("after expiry: %+v", st)
	}
	if _, l := get(c, "forever", 110); l != Hit {
		t.Fatalf("forever: %v", l)
	}
	bs := c.TTLBuckets()
	if len(bs) != 1 || bs[0].Bucket != noTTLBucket || bs[0].Segments != 1 || bs[0].Used != uint64(itemSize(7, 500, false)) {
		t.Fatalf("buckets after expiry: %+v", bs)
	}
}

func TestDeadBytes(t *testing.T) {
	c := newTest(t, Config{MemoryLimit: 1 << 20, SegmentSize: 16 << 10, MaxItemSize: 4 << 10})
	v := make([]byte, 1000)
	for i := range 40 {
		set(t, c, fmt.Sprint("k", i%10), v, 0, 1)
	}
	st := c.Stats()
	if st.SegmentsSealed == 0 || st.SegmentBytesDead == 0 || st.CurrItems != 10 {
		t.Fatalf("stats %+v", st)
	}
	if st.Bytes != 10*uint64(itemSize(2, 1000, false)) {
		t.Fatalf("bytes %d", st.Bytes)
	}
	// Sealed segments whose items are all overwritten are freed whole.
	c.Maintain(2)
	if st2 := c.Stats(); st2.SegmentsExpired == 0 || st2.SegmentBytesDead >= st.SegmentBytesDead {
		t.Fatalf("after maintain: %+v", st2)
	}
}

// TestSizeChange is the slab-calcification test: memory full of small items
// must serve a working set of large items once it has moved on.
func TestSizeChange(t *testing.T) {
	for _, p := range []Policy{EvictFIFO, EvictMerge, EvictRandom} {
		c := newTest(t, Config{MemoryLimit: 4 << 20, SegmentSize: 64 << 10, MaxItemSize: 32 << 10, Eviction: p})
		small := make([]byte, 100)
		for i := range 40000 {
			set(t, c, fmt.Sprint("small", i), small, 0, 1)
		}
		big := make([]byte, 10<<10)
		n := 250 // 2.5 MiB of 4
		if p == EvictRandom {
			n = 150 // random eviction also hits the new items
		}
		for range 2 {
			for i := range n {
				set(t, c, fmt.Sprint("big", i), big, 0, 2)
			}
		}
		hits := 0
		for i := range n {
			if _, l := get(c, fmt.Sprint("big", i), 3); l == Hit {
				hits++
			}
		}
		want := n * 9 / 10
		if p == EvictRandom {
			// Each eviction picks any of the ~60 segments, the new ones
			// included: the first of the second pass's 25 segments
			// faces ~24 evictions, so about 85% survive on average.
			want = n * 3 / 4
		}
		if hits < want {
			t.Errorf("policy %d: %d of %d big items hit", p, hits, n)
		}
	}
}

// TestReinsertion: with FIFO reinsertion, items read since written survive
// the eviction of their segment; with random eviction they need not.
func TestReinsertion(t *testing.T) {
	for _, p := range []Policy{EvictFIFO, EvictMerge} {
		c := newTest(t, Config{MemoryLimit: 1 << 20, SegmentSize: 64 << 10, MaxItemSize: 4 << 10, Eviction: p})
		v := make([]byte, 200)
		for i := range 20 {
			set(t, c, fmt.Sprint("hot", i), v, 0, 1)
			get(c, fmt.Sprint("hot", i), 1)
		}
		now := int64(1)
		for i := range 20000 { // 5 MiB through a 1 MiB cache
			set(t, c, fmt.Sprint("cold", i), v, 0, now)
			if i%1000 == 0 {
				now++ // the frequency mark rises at most once a second
				for j := range 20 {
					get(c, fmt.Sprint("hot", j), now)
				}
			}
		}
		for i := range 20 {
			if _, l := get(c, fmt.Sprint("hot", i), now); l != Hit {
				t.Errorf("policy %d: hot%d: %v", p, i, l)
			}
		}
		if st := c.Stats(); st.Reinserted == 0 || st.Evictions == 0 || st.SegmentsEvicted == 0 {
			t.Errorf("policy %d: stats %+v", p, st)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	c := newTest(t, Config{})
	key, val := []byte("some:key:1234"), make([]byte, 100)
	set(t, c, string(key), val, 0, 1)
	var n int
	if a := testing.AllocsPerRun(100, func() {
		c.Do(key, 1, func(it Item, l Lookup) (Item, Op) { n += len(it.Value); return it, OpBump })
	}); a != 0 {
		t.Errorf("get: %v allocs", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		c.Do(key, 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: val, Flags: uint32(n)}, OpPut })
	}); a != 0 {
		t.Errorf("set: %v allocs", a)
	}
	if n != 100*101 { // the warm-up run counts too
		t.Errorf("callback saw %d bytes", n)
	}
}

// TestStatsFields drives a small cache through stores, overwrites, hits,
// expiry and eviction, and checks that every Stats field moved.
func TestStatsFields(t *testing.T) {
	c := newTest(t, Config{MemoryLimit: 256 << 10, SegmentSize: 16 << 10, MaxItemSize: 4 << 10})
	v := make([]byte, 300)
	now := int64(100)
	for i := range 3000 {
		key := fmt.Sprint("k", i%1200)
		exp := int64(0)
		if i%3 == 0 {
			exp = now + 5
		}
		set(t, c, key, v, exp, now)
		if i%7 == 0 {
			get(c, fmt.Sprint("k", (i+700)%1200), now) // written 500 stores ago
		}
		if i%100 == 0 {
			now++
			c.Maintain(now)
		}
	}
	set(t, c, "last", v, 0, now) // leave an overwritten item in an open or sealed segment
	set(t, c, "last", v, 0, now)
	for i := range 40 { // fill a segment past the dead item so it is sealed
		set(t, c, fmt.Sprint("tail", i), v, 0, now)
	}
	st := c.Stats()
	none := newTest(t, Config{MemoryLimit: 16 << 10, Eviction: EvictNone})
	for i := range 100 {
		none.Do([]byte(fmt.Sprint(i)), 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: v}, OpPut })
	}
	st.OutOfMemory = none.Stats().OutOfMemory
	rv := reflect.ValueOf(st)
	for i := range rv.NumField() {
		if rv.Field(i).Uint() == 0 {
			t.Errorf("Stats.%s is 0", rv.Type().Field(i).Name)
		}
	}
	if t.Failed() {
		t.Logf("%+v", st)
	}
	if st.SegmentsFree+st.SegmentsOpen+st.SegmentsSealed != st.SegmentsTotal || st.Bytes > st.LimitBytes {
		t.Errorf("inconsistent: %+v", st)
	}
}

// TestNoPointerPerItem checks the point of the layout: the number of heap
// objects does not grow with the number of items.
func TestNoPointerPerItem(t *testing.T) {
	c := newTest(t, Config{MemoryLimit: 64 << 20})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	key, v := make([]byte, 0, 32), make([]byte, 50)
	const n = 200_000
	for i := range n {
		key = fmt.Appendf(key[:0], "key:%d", i)
		c.Do(key, 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: v}, OpPut })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := c.Stats(); st.CurrItems != n {
		t.Fatalf("%d items, want %d", st.CurrItems, n)
	}
	grew := int64(after.HeapObjects) - int64(before.HeapObjects)
	t.Logf("%d items, %d more heap objects", n, grew)
	if grew > n/100 {
		t.Errorf("%d items added %d heap objects", n, grew)
	}
	runtime.KeepAlive(c)
}
