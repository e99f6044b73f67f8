package analyze

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"petrel/internal/cache"
)

// Petrel's eviction policy is simulated by replaying the sampled trace
// through the real engine, one cache.Cache per size on a ladder of
// absolute sizes two per doubling (4 KiB·√2^j). A size A is simulated by a
// cache of R·A bytes (the SHARDS miniature), with segments R times
// Config.SegmentSize (at least 1 KiB: the engine's minimum), so that the
// miniature has as many segments as the full-size cache. Only sizes whose
// miniature lies between the engine's smallest cache (4 KiB: 4 segments of
// 1 KiB) and SimMemory are simulated.
//
// When the fixed-size sampler halves the rate, every miniature must shrink
// by half: it is rebuilt at the new size and refilled with the surviving
// sampled keys it held, least recently used first, so it stays warm.
// Sizes that fall below 4 KiB stop there (their miss ratio covers the log
// up to that point); new sizes at the top start as a copy of the largest
// one, counters included.

// simKeyLen: sampled keys are replayed as their 8-byte hash, with the
// value padded by the difference so the item keeps its footprint.
const simKeyLen = 8

const (
	minSim  = 4 << 10
	simBase = 4 << 10
)

type simulator struct {
	policy   cache.Policy
	segment  int   // full-size segment bytes
	maxPhys  int64 // largest miniature
	sims     map[int]*sim
	lo, hi   int // active ladder steps [lo, hi]
	zero     []byte
	now      int64
	keybuf   [simKeyLen]byte
	tooLarge uint64
}

type sim struct {
	step   int
	abs    int64
	c      *cache.Cache
	reads  float64
	misses float64
	active bool
	// Reads in the whole log while the size was simulated (from, to),
	// for SHARDS_adj: the ones before since are summed in seen.
	from, seen uint64
}

func ladder(j int) int64 {
	return int64(math.Round(simBase*math.Pow(2, float64(j)/2))) &^ 7
}

func newSimulator(policy cache.Policy, segment int, maxPhys int64) *simulator {
	if segment <= 0 {
		segment = 1 << 20
	}
	return &simulator{policy: policy, segment: segment, maxPhys: maxPhys, sims: map[int]*sim{}, lo: 0, hi: -1}
}

func (s *simulator) newCache(abs int64, rate float64) (*cache.Cache, error) {
	phys := int64(float64(abs)*rate) &^ 7
	seg := max(1024, int(float64(s.segment)*rate)&^7)
	return cache.New(cache.Config{MemoryLimit: phys, SegmentSize: seg, MaxItemSize: seg, Eviction: s.policy})
}

// setRate (re)builds the ladder for rate. order lists the sampled keys,
// least recently used first, to refill rebuilt caches.
func (s *simulator) setRate(rate float64, order []uint64, reads uint64) error {
	if s.maxPhys < minSim {
		return nil
	}
	lo, hi := -1, -1
	for j := 0; ; j++ {
		p := float64(ladder(j)) * rate
		if p > float64(s.maxPhys) {
			break
		}
		if p >= minSim {
			if lo < 0 {
				lo = j
			}
			hi = j
		}
	}
	if lo < 0 {
		return nil
	}
	var largest *sim
	for j := s.lo; j <= s.hi; j++ {
		if sm := s.sims[j]; sm != nil && sm.active {
			largest = sm
		}
	}
	for j := lo; j <= hi; j++ {
		sm := s.sims[j]
		src := largest
		switch {
		case sm == nil && src != nil:
			// A new size at the top starts as a copy of the largest one,
			// and so does its past: it is credited with that size's
			// reads and misses so far, which is exact if that one never
			// had to evict, and otherwise errs towards more misses.
			sm = &sim{step: j, abs: ladder(j), reads: src.reads, misses: src.misses, seen: src.seen, from: src.from}
			s.sims[j] = sm
		case sm == nil:
			sm = &sim{step: j, abs: ladder(j), from: reads}
			s.sims[j] = sm
		case sm.active:
			src = sm
		default:
			sm.from = reads
		}
		c, err := s.newCache(sm.abs, rate)
		if err != nil {
			return fmt.Errorf("simulating %d bytes at rate %g: %w", sm.abs, rate, err)
		}
		if src != nil {
			s.refill(c, src.c, order)
		}
		sm.c, sm.active = c, true
	}
	for j := s.lo; j <= s.hi; j++ {
		if sm := s.sims[j]; sm != nil && (j < lo || j > hi) {
			sm.active, sm.c = false, nil
			sm.seen += reads - sm.from
		}
	}
	s.lo, s.hi = lo, hi
	return nil
}

// refill copies into dst the keys of order that src holds, in order.
func (s *simulator) refill(dst, src *cache.Cache, order []uint64) {
	for _, h := range order {
		key := s.key(h)
		var it cache.Item
		found := false
		_, _ = src.Do(key, s.now, func(got cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			if l == cache.Hit {
				found = true
				it = cache.Item{Flags: got.Flags, Exptime: got.Exptime}
				it.Value = s.value(simKeyLen, int64(len(got.Value)))
			}
			return got, 0
		})
		if !found {
			continue
		}
		it.Key = key
		_, _ = dst.Do(key, s.now, func(cache.Item, cache.Lookup) (cache.Item, cache.Op) { return it, cache.OpPut })
	}
}

func (s *simulator) key(h uint64) []byte {
	binary.BigEndian.PutUint64(s.keybuf[:], h)
	return s.keybuf[:]
}

func (s *simulator) value(klen int, vlen int64) []byte {
	n := max(0, int64(klen)+vlen-simKeyLen)
	if int64(len(s.zero)) < n {
		s.zero = make([]byte, max(n, 2*int64(len(s.zero)), 4096))
	}
	return s.zero[:n]
}

func (s *simulator) tick(now int64) {
	if now > s.now {
		s.now = now
	}
}

// read replays a read of h in every cache. If fill, a miss stores the item
// (klen, vlen, exp), as a demand-filled look-aside cache would; setExp
// changes a hit item's exptime (gat).
func (s *simulator) read(h uint64, w float64, fill bool, klen int, vlen, exp int64, setExp bool) {
	key := s.key(h)
	val := s.value(klen, vlen)
	for j := s.lo; j <= s.hi; j++ {
		sm := s.sims[j]
		if sm == nil || !sm.active {
			continue
		}
		sm.reads += w
		hit := false
		_, err := sm.c.Do(key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
			if l == cache.Hit {
				hit = true
				if setExp {
					it.Exptime = exp
					return it, cache.OpBump | cache.OpMeta
				}
				return it, cache.OpBump
			}
			if fill {
				return cache.Item{Key: key, Value: val, Exptime: exp}, cache.OpPut
			}
			return it, 0
		})
		if !hit {
			sm.misses += w
		}
		s.noteErr(err)
	}
}

// store writes h in every cache.
func (s *simulator) store(h uint64, klen int, vlen, exp int64, flags uint32) {
	key := s.key(h)
	val := s.value(klen, vlen)
	for j := s.lo; j <= s.hi; j++ {
		if sm := s.sims[j]; sm != nil && sm.active {
			_, err := sm.c.Do(key, s.now, func(cache.Item, cache.Lookup) (cache.Item, cache.Op) {
				return cache.Item{Key: key, Value: val, Exptime: exp, Flags: flags}, cache.OpPut
			})
			s.noteErr(err)
		}
	}
}

// touch bumps h, and sets its exptime if setExp, where it is cached.
func (s *simulator) touch(h uint64, exp int64, setExp bool) {
	key := s.key(h)
	for j := s.lo; j <= s.hi; j++ {
		if sm := s.sims[j]; sm != nil && sm.active {
			_, _ = sm.c.Do(key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
				if l != cache.Hit {
					return it, 0
				}
				if setExp {
					it.Exptime = exp
					return it, cache.OpBump | cache.OpMeta
				}
				return it, cache.OpBump
			})
		}
	}
}

func (s *simulator) remove(h uint64) {
	key := s.key(h)
	for j := s.lo; j <= s.hi; j++ {
		if sm := s.sims[j]; sm != nil && sm.active {
			_, _ = sm.c.Do(key, s.now, func(it cache.Item, l cache.Lookup) (cache.Item, cache.Op) {
				if l == cache.Miss {
					return it, 0
				}
				return it, cache.OpDelete
			})
		}
	}
}

func (s *simulator) flush() {
	for j := s.lo; j <= s.hi; j++ {
		if sm := s.sims[j]; sm != nil && sm.active {
			sm.c.FlushAll(s.now, s.now)
		}
	}
}

func (s *simulator) noteErr(err error) {
	if errors.Is(err, cache.ErrTooLarge) {
		s.tooLarge++
	}
}

// curve returns the simulated miss ratio at each size that saw reads;
// reads is the number of reads in the whole log. As for LRU, the misses
// are divided by the reads of the whole log while the size was simulated
// rather than by the sampled reads scaled up (SHARDS_adj).
func (s *simulator) curve(reads uint64) []Point {
	var pts []Point
	for j := 0; j <= s.hi; j++ {
		sm := s.sims[j]
		if sm == nil || sm.reads == 0 {
			continue
		}
		all := float64(sm.seen)
		if sm.active {
			all += float64(reads - sm.from)
		}
		if all == 0 {
			all = sm.reads
		}
		pts = append(pts, Point{Bytes: sm.abs, MissRatio: min(1, sm.misses/all), Reads: all})
	}
	return pts
}
