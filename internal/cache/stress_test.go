package cache

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// stressValue makes a value that names its key and version, so a reader can
// tell a torn or misdirected value from a good one.
func stressValue(key []byte, ver, n int) []byte {
	v := fmt.Appendf(nil, "%s|%d|", key, ver)
	for len(v) < n {
		v = append(v, key[len(key)-1])
	}
	return v
}

func checkStressValue(key, v []byte) error {
	prefix := append(append([]byte(nil), key...), '|')
	if !bytes.HasPrefix(v, prefix) {
		return fmt.Errorf("value %.40q does not start with key %q", v, key)
	}
	rest := v[len(prefix):]
	i := bytes.IndexByte(rest, '|')
	if i < 0 {
		return fmt.Errorf("value %.40q has no version", v)
	}
	for _, b := range rest[i+1:] {
		if b != key[len(key)-1] {
			return fmt.Errorf("value %.40q of key %q has a foreign byte", v, key)
		}
	}
	return nil
}

// TestConcurrentStress runs goroutines against a small cache, each with its
// own keys (checked against a private model: a hit must return exactly the
// last value written) and shared keys (checked for self-consistency), while
// another goroutine advances the clock, flushes and runs Maintain.
func TestConcurrentStress(t *testing.T) {
	for _, p := range []Policy{EvictFIFO, EvictMerge, EvictRandom, EvictNone} {
		t.Run(fmt.Sprint("policy", p), func(t *testing.T) { stress(t, p) })
	}
}

func stress(t *testing.T, p Policy) {
	c := newTest(t, Config{MemoryLimit: 256 << 10, SegmentSize: 16 << 10, MaxItemSize: 8 << 10, Eviction: p})
	var now atomic.Int64
	now.Store(1000)
	const workers, ops = 6, 6000
	var wg sync.WaitGroup
	errc := make(chan error, workers+1)
	stop := make(chan struct{})
	go func() { // the clock and the maintenance loop
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			n := now.Add(int64(r.IntN(2)))
			c.Maintain(n)
			if r.IntN(50) == 0 {
				c.FlushAll(n, n+int64(r.IntN(3)))
			}
			c.Stats()
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- stressWorker(c, w, ops, &now)
		}()
	}
	wg.Wait()
	close(stop)
	for range workers + 1 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	checkIndex(t, c)
	st := c.Stats()
	if p != EvictNone && st.SegmentsEvicted == 0 {
		t.Errorf("no segment evicted: %+v", st)
	}
	if st.SegmentsFree+st.SegmentsOpen+st.SegmentsSealed != st.SegmentsTotal {
		t.Errorf("segment states do not add up: %+v", st)
	}
}

func stressWorker(c *Cache, w, ops int, now *atomic.Int64) error {
	r := rand.New(rand.NewPCG(uint64(w), 9))
	own := make(map[string][]byte) // last value written to each own key; nil if deleted
	for i := range ops {
		var key []byte
		shared := r.IntN(3) == 0
		if shared {
			key = fmt.Appendf(nil, "shared:%d", r.IntN(50))
		} else {
			key = fmt.Appendf(nil, "w%d:%d", w, r.IntN(200))
		}
		t := now.Load()
		var bad error
		check := func(it Item, l Lookup) {
			if l != Hit {
				return
			}
			if err := checkStressValue(key, it.Value); err != nil {
				bad = err
				return
			}
			if want, ok := own[string(key)]; !shared && ok && !bytes.Equal(want, it.Value) {
				bad = fmt.Errorf("worker %d op %d key %s: got %.30q, want %.30q", w, i, key, it.Value, want)
			}
		}
		switch op := r.IntN(10); {
		case op < 4:
			v := stressValue(key, i, 20+r.IntN(3000))
			_, err := c.Do(key, t, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				return Item{Value: v, Exptime: t + int64(r.IntN(20))*int64(r.IntN(2))}, OpPut
			})
			switch {
			case err == nil:
				if !shared {
					own[string(key)] = v
				}
			case errors.Is(err, ErrNoMemory) && c.cfg.Eviction == EvictNone:
			default:
				return fmt.Errorf("worker %d op %d: %v", w, i, err)
			}
		case op < 7:
			c.Do(key, t, func(it Item, l Lookup) (Item, Op) { check(it, l); return it, OpBump })
		case op < 8:
			// Store the item's own value again: the value aliases the old
			// item, which a put that must make room may see evicted.
			_, err := c.Do(key, t, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				if l != Hit {
					return it, 0
				}
				return Item{Value: it.Value, Flags: 1}, OpPut
			})
			if err != nil && !(errors.Is(err, ErrNoMemory) && c.cfg.Eviction == EvictNone) {
				return fmt.Errorf("worker %d op %d: re-put: %v", w, i, err)
			}
		case op < 9:
			c.Do(key, t, func(it Item, l Lookup) (Item, Op) { check(it, l); return it, OpDelete })
			delete(own, string(key))
		default:
			c.Do(key, t, func(it Item, l Lookup) (Item, Op) {
				check(it, l)
				it.Exptime = 0
				return it, OpMeta
			})
		}
		if bad != nil {
			return bad
		}
	}
	return nil
}
