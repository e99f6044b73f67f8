package cache

// Tests of the compact layout: flags stored only when non-zero, the key
// length limit, flush_all ordered by CAS, segments off the Go heap, and the
// index's probe lengths at its load factors.

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestMetaFlagsRelocate(t *testing.T) {
	c := newTest(t, Config{})
	const now = 100
	cas := set(t, c, "k", []byte("value"), 0, now)
	get(c, "k", now+1)
	before := c.Stats()
	got, err := c.Do([]byte("k"), now+2, func(it Item, l Lookup) (Item, Op) {
		it.Flags = 42
		return it, OpMeta
	})
	if err != nil || got != cas {
		t.Fatalf("meta flags: cas %d err %v, want %d", got, err, cas)
	}
	var it0 Item
	c.Do([]byte("k"), now+3, func(it Item, l Lookup) (Item, Op) {
		it0 = it
		it0.Value = bytes.Clone(it.Value)
		return it, 0
	})
	if it0.Flags != 42 || it0.CAS != cas || string(it0.Value) != "value" || !it0.Fetched || it0.Atime != now+1 {
		t.Fatalf("after relocation: %+v", it0)
	}
	after := c.Stats()
	if after.TotalItems != before.TotalItems || after.CurrItems != 1 || after.Bytes != before.Bytes+flagsSize {
		t.Fatalf("stats before %+v after %+v", before, after)
	}
	// Flags back to 0 and to another value are written in place.
	for _, fl := range []uint32{0, 7} {
		c.Do([]byte("k"), now+4, func(it Item, l Lookup) (Item, Op) { it.Flags = fl; return it, OpMeta })
		c.Do([]byte("k"), now+4, func(it Item, l Lookup) (Item, Op) { it0 = it; return it, 0 })
		if it0.Flags != fl || c.Stats().Bytes != after.Bytes {
			t.Fatalf("flags %d: %+v, bytes %d", fl, it0, c.Stats().Bytes)
		}
	}
}

func TestKeyLength(t *testing.T) {
	c := newTest(t, Config{})
	f := func(n int, want error) {
		t.Helper()
		_, err := c.Do([]byte(strings.Repeat("k", n)), 1, func(it Item, l Lookup) (Item, Op) {
			return Item{Value: []byte("v")}, OpPut
		})
		if !errors.Is(err, want) {
			t.Errorf("key of %d bytes: %v, want %v", n, err, want)
		}
	}
	f(1, nil)
	f(250, nil)
	f(maxKeyLen, nil)
	f(maxKeyLen+1, ErrTooLarge)
	f(1000, ErrTooLarge)
}

// TestFlushByCAS covers the CAS sources flush_all is ordered by: the
// counter, Config.NextCAS (journal sequences) and kept CAS values.
func TestFlushByCAS(t *testing.T) {
	seq := uint64(100)
	c := newTest(t, Config{NextCAS: func() uint64 { seq++; return seq }})
	keep := func(key string, cas uint64, now int64) {
		t.Helper()
		if _, err := c.Do([]byte(key), now, func(it Item, l Lookup) (Item, Op) {
			return Item{Value: []byte("v"), CAS: cas}, OpPut | OpKeepCAS
		}); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(key string, now int64, want Lookup) {
		t.Helper()
		if _, l := get(c, key, now); l != want {
			t.Errorf("%s at %d: %v, want %v", key, now, l, want)
		}
	}
	set(t, c, "a", []byte("v"), 0, 10) // CAS 101
	keep("replayed", 500, 10)          // a journal replay ahead of NextCAS
	c.FlushAll(10, 10)
	set(t, c, "b", []byte("v"), 0, 10) // CAS 102: below the kept 500...
	lookup("a", 10, Flushed)
	lookup("replayed", 10, Flushed)
	lookup("b", 10, Flushed) // ...so a NextCAS behind kept values loses it
	seq = 1000               // a journal's sequences stay ahead of replay
	set(t, c, "c", []byte("v"), 0, 10)
	lookup("c", 10, Hit)

	// A delayed flush takes everything stored up to the end of its second,
	// and its mark when a later second is first seen, by a lookup or by
	// Maintain; what is stored after that survives.
	c2 := newTest(t, Config{})
	set(t, c2, "x", []byte("v"), 0, 10)
	c2.FlushAll(10, 20)
	set(t, c2, "y", []byte("v"), 0, 19)
	set(t, c2, "w", []byte("v"), 0, 20)
	c2.Maintain(21)
	set(t, c2, "z", []byte("v"), 0, 20) // a connection whose clock lags
	// Maintain may have freed x, y and w's segment whole: then they miss.
	for key, hit := range map[string]bool{"x": false, "y": false, "w": false, "z": true} {
		if _, l := get(c2, key, 22); (l == Hit) != hit {
			t.Errorf("delayed: %s %v, want hit %v", key, l, hit)
		}
	}
	// A kept CAS above the counter moves it, so later items stay above.
	c3 := newTest(t, Config{})
	c3.Do([]byte("e"), 1, func(it Item, l Lookup) (Item, Op) {
		return Item{Value: []byte("v"), CAS: 1 << 40}, OpPut | OpKeepCAS
	})
	c3.FlushAll(1, 1)
	if cas := set(t, c3, "f", []byte("v"), 0, 1); cas != 1<<40+1 {
		t.Errorf("after a kept CAS of 2^40 the counter gave %d", cas)
	}
	if _, l := get(c3, "f", 1); l != Hit {
		t.Errorf("f: %v", l)
	}
}

func TestSegmentsOffHeap(t *testing.T) {
	if !offHeap {
		t.Skip("segments are on the Go heap in this build (race detector)")
	}
	c := newTest(t, Config{MemoryLimit: 64 << 20})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := make([]byte, 1000)
	key := make([]byte, 0, 16)
	for i := range 30000 { // about 30 MiB of items
		key = fmt.Appendf(key[:0], "k%d", i)
		c.Do(key, 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: v}, OpPut })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("30000 items of 1 KB: heap grew %d KiB, index %d KiB", grew>>10, c.Stats().IndexBytes>>10)
	if grew > 4<<20 {
		t.Errorf("heap grew %d bytes for 30 MiB of items: segments are on the heap", grew)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestProbeLength reports the index's average probe lengths by load: for a
// hit, the slots read from the key's home to its slot; for a miss, from a
// home to the first empty slot. It checks them against bounds a little
// above Knuth's for linear probing at the 7/8 growth load (4.5 and 32.5).
func TestProbeLength(t *testing.T) {
	c := newTest(t, Config{MemoryLimit: 256 << 20})
	type acc struct{ shards, slots, live, hitSum, missSum int }
	var byLoad [8]acc // load in eighths
	key := make([]byte, 0, 16)
	n := 0
	for _, target := range []int{20000, 50000, 100000, 200000, 300000} {
		for ; n < target; n++ {
			key = fmt.Appendf(key[:0], "key:%d", n)
			c.Do(key, 1, func(it Item, l Lookup) (Item, Op) { return Item{Value: key[:4]}, OpPut })
		}
		for si := range c.shards {
			s := &c.shards[si]
			hits, misses := 0, 0
			for i, v := range s.slots {
				if v > tombstone {
					home := s.home(c.hash(c.keyOf(v)))
					hits += int((uint64(i)+s.n-home)%s.n) + 1
				}
			}
			// The run of full slots from each position to the next empty
			// one, summed over positions, from one backwards pass.
			run := 0
			for k := 2 * len(s.slots); k > 0; k-- {
				i := k % len(s.slots)
				if s.slots[i] == 0 {
					run = 0
				} else {
					run++
				}
				if k <= len(s.slots) {
					misses += run + 1
				}
			}
			a := &byLoad[min(7, s.live*8/len(s.slots))]
			a.shards++
			a.slots += len(s.slots)
			a.live += s.live
			a.hitSum += hits
			a.missSum += misses
		}
	}
	for i, a := range byLoad {
		if a.shards == 0 {
			continue
		}
		hit, miss := float64(a.hitSum)/float64(a.live), float64(a.missSum)/float64(a.slots)
		t.Logf("load %d/8..%d/8: %4d shards, load %.2f, %.2f slots per hit, %.2f per miss", i, i+1, a.shards, float64(a.live)/float64(a.slots), hit, miss)
		if hit > 5 || miss > 40 {
			t.Errorf("load %d/8: probes %.2f per hit, %.2f per miss", i, hit, miss)
		}
	}
	if byLoad[7].shards == 0 && byLoad[6].shards == 0 {
		t.Errorf("no shard above 3/4 load was measured: %+v", byLoad)
	}
	checkIndex(t, c)
}
