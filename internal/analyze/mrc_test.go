package analyze

import (
	"container/list"
	"math"
	"testing"

	"petrel/internal/cache"
)

// lruMissRatio simulates an LRU cache of capacity bytes, item by item, on
// ops: the brute-force reference for the stack-distance curve. A read of
// a key that exists (was stored, or hit in the log) hits if cached, and
// otherwise misses and is filled; a read of any other key misses.
func lruMissRatio(ops []op, capacity int64) float64 {
	type ent struct {
		key  string
		size int64
	}
	ll := list.New()
	where := map[string]*list.Element{}
	exists := map[string]int64{} // key -> footprint
	var used int64
	touch := func(key string, size int64) {
		if e, ok := where[key]; ok {
			used -= e.Value.(*ent).size
			ll.Remove(e)
		}
		where[key] = ll.PushFront(&ent{key, size})
		used += size
		for used > capacity {
			e := ll.Back()
			used -= e.Value.(*ent).size
			delete(where, e.Value.(*ent).key)
			ll.Remove(e)
		}
	}
	var reads, misses float64
	for _, o := range ops {
		switch o.cmd {
		case "get":
			reads++
			size, ok := exists[o.key]
			if _, cached := where[o.key]; !cached {
				misses++
			}
			if !ok && o.result == "hit" {
				size, ok = itemFoot(len(o.key), o.vlen), true
				exists[o.key] = size
			}
			if ok {
				touch(o.key, size)
			}
		case "set":
			size := itemFoot(len(o.key), o.vlen)
			exists[o.key] = size
			touch(o.key, size)
		}
	}
	return misses / reads
}

func TestLRUCurveExact(t *testing.T) {
	ops := zipfTrace(20000, 3000, 1.2, 1)
	r := analyzeOps(t, Config{Rate: 1, SimMemory: -1}, ops)
	if r.Sampling.Rate != 1 || len(r.MRC.LRU) < 10 {
		t.Fatalf("rate %v, %d points", r.Sampling.Rate, len(r.MRC.LRU))
	}
	// The curve is exact at every histogram edge; check one in four.
	for i, p := range r.MRC.LRU {
		if i%4 != 0 && i != len(r.MRC.LRU)-1 {
			continue
		}
		want := lruMissRatio(ops, p.Bytes)
		if math.Abs(p.MissRatio-want) > 1e-9 {
			t.Fatalf("at %d bytes: curve %.6f, LRU simulation %.6f", p.Bytes, p.MissRatio, want)
		}
	}
	// Beyond the last point only cold misses remain.
	last := r.MRC.LRU[len(r.MRC.LRU)-1]
	if math.Abs(last.MissRatio-r.MRC.ColdMissRatio) > 1e-9 {
		t.Fatalf("last point %.6f, cold miss ratio %.6f", last.MissRatio, r.MRC.ColdMissRatio)
	}
}

func TestLRUCurveSampled(t *testing.T) {
	n := 200000
	if raceEnabled {
		n = 100000
	}
	ops := zipfTrace(n, 200000, 1.05, 2)
	exact := analyzeOps(t, Config{Rate: 1, SimMemory: -1}, ops)
	f := func(cfg Config, tol float64) {
		t.Helper()
		r := analyzeOps(t, cfg, ops)
		var sum float64
		n := 0
		for _, p := range exact.MRC.LRU {
			if p.Bytes < 64<<10 {
				continue // below ~100 sampled keys' worth the sample says little
			}
			sum += math.Abs(missAt(r.MRC.LRU, p.Bytes) - p.MissRatio)
			n++
		}
		mae := sum / float64(n)
		if mae > tol {
			t.Fatalf("%+v: mean absolute error %.4f over %d sizes, want <= %v", cfg, mae, n, tol)
		}
		t.Logf("rate %g (%s): LRU mean absolute error %.4f over %d sizes >= 64 KiB", r.Sampling.Rate, r.Sampling.Mode, mae, n)
	}
	// Stated tolerance: mean absolute error of the miss ratio 0.02.
	f(Config{Rate: 0.1, SimMemory: -1}, 0.02)
	f(Config{MaxKeys: 4096, SimMemory: -1}, 0.02)
}

func TestFixedSizeBoundsKeys(t *testing.T) {
	ops := zipfTrace(100000, 100000, 1.01, 3)
	a, err := New(Config{MaxKeys: 1000, SimKeys: 300, SimMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		var rec Record
		fs := v1Fields
		if err := fs.parse([]byte(o.line()), &rec); err != nil {
			t.Fatal(err)
		}
		a.Add(&rec)
		if len(a.keys) > 1000 || a.simKeys > 300 {
			t.Fatalf("sample holds %d keys (nested %d)", len(a.keys), a.simKeys)
		}
	}
	r, err := a.Report()
	if err != nil {
		t.Fatal(err)
	}
	if r.Sampling.Halvings == 0 || r.Sampling.Rate >= 1 || r.Sampling.SimRate > r.Sampling.Rate {
		t.Fatalf("sampling %+v", r.Sampling)
	}
	if len(r.MRC.Petrel) == 0 {
		t.Fatal("no Petrel curve")
	}
}

// petrelReplay replays ops through one cache.Cache directly, with the
// analyzer's rules but real keys, and returns the read miss ratio.
func petrelReplay(t *testing.T, ops []op, cfg cache.Config) float64 {
	t.Helper()
	c, err := cache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exists := map[string]int64{} // key -> value length
	var reads, misses float64
	for _, o := range ops {
		key := []byte(o.key)
		switch o.cmd {
		case "get":
			reads++
			vlen, ok := exists[o.key]
			if !ok && o.result == "hit" {
				vlen, ok = o.vlen, true
				exists[o.key] = vlen
			}
			hit := false
			_, _ = c.Do(key, o.sec, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
				if l == cache.Hit {
					hit = true
					return it, cache.OpBump
				}
				if ok {
					return cache.Item{Key: key, Value: make([]byte, vlen)}, cache.OpPut
				}
				return it, 0
			})
			if !hit {
				misses++
			}
		case "set":
			exists[o.key] = o.vlen
			_, _ = c.Do(key, o.sec, func(cache.Item, cache.Lookup) (cache.Item, cache.Op) {
				return cache.Item{Key: key, Value: make([]byte, o.vlen)}, cache.OpPut
			})
		}
	}
	return misses / reads
}

func TestPetrelCurveMatchesDirectReplay(t *testing.T) {
	// Keys are 8 bytes ("k" + 7 digits), as the simulation's hashed keys
	// are, so the items have the same footprint either way.
	n := 30000
	if raceEnabled {
		n = 10000
	}
	ops := zipfTrace(n, 5000, 1.1, 4)
	for i := range ops {
		ops[i].key = "k" + ops[i].key[1:] + "0000000"[:8-len(ops[i].key)]
	}
	for _, pol := range []cache.Policy{cache.EvictFIFO, cache.EvictMerge, cache.EvictRandom} {
		r := analyzeOps(t, Config{Rate: 1, SimKeys: -1, SimMemory: 1 << 20, SegmentSize: 4096, Policy: pol}, ops)
		if len(r.MRC.Petrel) < 8 {
			t.Fatalf("%d Petrel points", len(r.MRC.Petrel))
		}
		for _, p := range r.MRC.Petrel {
			want := petrelReplay(t, ops, cache.Config{MemoryLimit: p.Bytes, SegmentSize: 4096, MaxItemSize: 4096, Eviction: pol})
			if math.Abs(p.MissRatio-want) > 1e-9 {
				t.Fatalf("policy %d, %d bytes: simulated %.6f, direct replay %.6f", pol, p.Bytes, p.MissRatio, want)
			}
		}
	}
}

func TestPetrelNearLRU(t *testing.T) {
	// Petrel's FIFO with reinsertion is not LRU, but on a Zipf trace the
	// two curves should be close where the cache holds many segments.
	n := 100000
	if raceEnabled {
		n = 30000
	}
	ops := zipfTrace(n, 20000, 1.1, 5)
	r := analyzeOps(t, Config{Rate: 1, SimKeys: -1, SimMemory: 8 << 20, SegmentSize: 8192}, ops)
	for _, p := range r.MRC.Petrel {
		if p.Bytes < 256<<10 {
			continue
		}
		if d := math.Abs(p.MissRatio - missAt(r.MRC.LRU, p.Bytes)); d > 0.1 {
			t.Errorf("%d bytes: Petrel %.3f, LRU %.3f", p.Bytes, p.MissRatio, missAt(r.MRC.LRU, p.Bytes))
		}
	}
}

func TestPetrelCurveSampled(t *testing.T) {
	lines := 200000
	if raceEnabled {
		lines = 60000
	}
	ops := zipfTrace(lines, 100000, 1.05, 6)
	exact := analyzeOps(t, Config{Rate: 1, SimKeys: -1, SimMemory: 16 << 20}, ops)
	r := analyzeOps(t, Config{Rate: 1, SimKeys: 4000, SimMemory: 16 << 20}, ops)
	if r.Sampling.SimRate >= 1 {
		t.Fatalf("nested sample not reduced: %+v", r.Sampling)
	}
	var sum float64
	n := 0
	for _, p := range r.MRC.Petrel {
		if p.Bytes < 256<<10 {
			continue
		}
		for _, q := range exact.MRC.Petrel {
			if q.Bytes == p.Bytes {
				sum += math.Abs(p.MissRatio - q.MissRatio)
				n++
			}
		}
	}
	if n < 4 {
		t.Fatalf("only %d common sizes", n)
	}
	// Stated tolerance: mean absolute error 0.03 with a 4000-key sample.
	mae := sum / float64(n)
	if mae > 0.03 {
		t.Fatalf("mean absolute error %.4f over %d sizes", mae, n)
	}
	t.Logf("nested rate %g: Petrel mean absolute error %.4f over %d sizes >= 256 KiB", r.Sampling.SimRate, mae, n)
}
