package cache

// A map-based model of the cache (what stub.go was before the engine), and
// randomized tests that run the same operations on both.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

type modelItem struct {
	value   []byte
	flags   uint32
	exptime int64
	cas     uint64
	fetched bool
}

// model orders flushes by CAS as the cache does (flush.go): hwm is the
// highest CAS stored, mark the flush mark (items with a CAS below it are
// flushed) and at a delayed flush's time: every item is flushed during
// that second, and the first lookup after it turns it into a mark.
type model struct {
	m    map[string]*modelItem
	hwm  uint64
	mark uint64
	at   int64
}

func newModel() *model { return &model{m: make(map[string]*modelItem)} }

// lookup mirrors Do's classification and drops items that are not live.
func (m *model) lookup(key string, now int64) (*modelItem, Lookup) {
	m.due(now)
	it := m.m[key]
	if it == nil {
		return nil, Miss
	}
	l := Hit
	switch {
	case it.cas < m.mark || (m.at != 0 && now == m.at):
		l = Flushed
	case it.exptime != 0 && it.exptime <= now:
		l = Expired
	}
	if l != Hit {
		delete(m.m, key)
		return nil, l
	}
	return it, Hit
}

func (m *model) due(now int64) {
	if m.at != 0 && now > m.at {
		m.mark, m.at = m.hwm+1, 0
	}
}

func (m *model) put(key string, value []byte, flags uint32, exp, now int64, cas uint64) {
	m.hwm = max(m.hwm, cas)
	m.m[key] = &modelItem{value: bytes.Clone(value), flags: flags, exptime: exp, cas: cas}
}

func (m *model) flush(now, at int64) {
	m.due(now)
	if at <= now {
		m.mark, m.at = m.hwm+1, 0
	} else {
		m.at = at
	}
}

// compatible reports whether the cache's answer may follow from the model's:
// exact when nothing can have been evicted, else a cache miss is allowed
// where the model hits. Expired and flushed items may already be gone from
// the cache (whole-segment expiry), so they may also read as a plain miss.
func compatible(model, got Lookup, evicting bool) bool {
	switch {
	case model == got:
		return true
	case got == Miss && (model == Expired || model == Flushed):
		return true
	case got == Miss && evicting:
		return true
	}
	return false
}

// runModel runs n random operations on a cache and the model, failing at
// the first disagreement.
func runModel(t *testing.T, seed uint64, cfg Config, n int, evicting bool) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel()
	r := rand.New(rand.NewPCG(seed, 7))
	now := int64(1_000_000)
	nkeys := 50 + r.IntN(400)
	maxVal := 1 + r.IntN(3000)
	val := make([]byte, 4096)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	key := func() []byte { return fmt.Appendf(nil, "key:%d", r.IntN(nkeys)) }
	exptime := func() int64 {
		switch r.IntN(4) {
		case 0:
			return now + int64(1+r.IntN(20))
		case 1:
			return now + int64(r.IntN(100000))
		}
		return 0
	}
	for i := range n {
		k := key()
		var ml, cl Lookup
		var mi *modelItem
		check := func(it Item, l Lookup) {
			cl = l
			mi, ml = m.lookup(string(k), now)
			if !compatible(ml, l, evicting) {
				t.Fatalf("seed %d op %d key %s: lookup %v, model %v", seed, i, k, l, ml)
			}
			if l == Hit {
				if !bytes.Equal(it.Value, mi.value) || it.Flags != mi.flags || it.Exptime != mi.exptime || it.CAS != mi.cas {
					t.Fatalf("seed %d op %d key %s: got %q/%d/%d/%d, model %q/%d/%d/%d", seed, i, k,
						it.Value, it.Flags, it.Exptime, it.CAS, mi.value, mi.flags, mi.exptime, mi.cas)
				}
				if it.Fetched != mi.fetched {
					t.Fatalf("seed %d op %d: fetched %v, model %v", seed, i, it.Fetched, mi.fetched)
				}
			}
		}
		op := r.IntN(100)
		if i%500 == 0 {
			checkIndex(t, c)
		}
		switch {
		case op < 35: // set
			v := val[:r.IntN(maxVal)]
			// Distinguish values by a prefix so a wrong item shows.
			v = append(fmt.Appendf(nil, "%d:", i), v...)
			flags, exp := r.Uint32(), exptime()
			cas, err := c.Do(k, now, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				return Item{Value: v, Flags: flags, Exptime: exp}, OpPut
			})
			if err != nil {
				t.Fatalf("seed %d op %d: put: %v", seed, i, err)
			}
			m.put(string(k), v, flags, exp, now, cas)
		case op < 70: // get
			_, err := c.Do(k, now, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				return it, OpBump
			})
			if err != nil {
				t.Fatal(err)
			}
			if ml == Hit {
				mi.fetched = true
			}
		case op < 80: // delete
			c.Do(k, now, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				return it, OpDelete
			})
			delete(m.m, string(k))
		case op < 88: // touch
			exp := exptime()
			c.Do(k, now, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				it.Exptime = exp
				return it, OpMeta
			})
			if ml == Hit {
				mi.exptime = exp
			}
		case op < 90: // add (put only on a miss), keeping the CAS given
			c.Do(k, now, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				if l == Hit {
					return it, 0
				}
				return Item{Value: []byte("added"), CAS: 77}, OpPut | OpKeepCAS
			})
			if cl != Hit {
				m.put(string(k), []byte("added"), 0, 0, now, 77)
			}
		case op < 91:
			if r.IntN(2) == 0 {
				c.FlushAll(now, now)
				m.flush(now, now)
			} else {
				at := now + int64(r.IntN(30))
				c.FlushAll(now, at)
				m.flush(now, at)
			}
		case op < 97:
			now += int64(r.IntN(3))
		default:
			now += int64(r.IntN(40))
			c.Maintain(now)
		}
	}
	st := c.Stats()
	if !evicting {
		if st.Evictions != 0 {
			t.Fatalf("seed %d: %d evictions with a large limit", seed, st.Evictions)
		}
	}
	if st.Bytes > st.LimitBytes {
		t.Fatalf("seed %d: %d bytes live over the limit %d", seed, st.Bytes, st.LimitBytes)
	}
}

func TestModelNoEviction(t *testing.T) {
	for seed := range uint64(40) {
		runModel(t, seed, Config{MemoryLimit: 64 << 20, SegmentSize: 64 << 10, MaxItemSize: 8 << 10}, 3000, false)
	}
}

func TestModelEviction(t *testing.T) {
	for _, p := range []Policy{EvictFIFO, EvictMerge, EvictRandom} {
		for seed := range uint64(40) {
			runModel(t, seed, Config{MemoryLimit: 96 << 10, SegmentSize: 8 << 10, MaxItemSize: 8 << 10, Eviction: p}, 3000, true)
		}
	}
}

// FuzzModel runs the model test from fuzzed seeds and cache shapes.
func FuzzModel(f *testing.F) {
	f.Add(uint64(1), uint8(0), false)
	f.Add(uint64(2), uint8(1), true)
	f.Fuzz(func(t *testing.T, seed uint64, policy uint8, small bool) {
		cfg := Config{MemoryLimit: 64 << 20, SegmentSize: 64 << 10, MaxItemSize: 8 << 10, Eviction: Policy(policy % 4)}
		if small {
			cfg.MemoryLimit, cfg.SegmentSize = 96<<10, 8<<10
		}
		if cfg.Eviction == EvictNone {
			cfg.MemoryLimit = 64 << 20 // the model has no notion of a refused put
		}
		runModel(t, seed, cfg, 400, small)
	})
}
