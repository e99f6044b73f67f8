package analyze

import (
	"math"
	"slices"
)

// stack is the LRU stack of the sampled keys, in bytes: position p holds
// the footprint of the key whose last reference was the p-th, in a Fenwick
// tree, so the bytes referenced since any position are one prefix sum away.
// Positions only grow; when they run out the live keys are renumbered
// 1..n in order (compact), which keeps memory proportional to the keys.
type stack struct {
	tree  []int64  // Fenwick tree, 1-based
	owner []uint64 // key hash at each position, 0 when free
	next  int      // next position to hand out
	total int64    // sum of the tree
	live  int
}

func newStack() *stack {
	s := &stack{}
	s.reset(1 << 12)
	return s
}

func (s *stack) reset(n int) {
	s.tree = make([]int64, n+1)
	s.owner = make([]uint64, n+1)
	s.next, s.total, s.live = 1, 0, 0
}

func (s *stack) add(p int, v int64) {
	s.total += v
	for ; p < len(s.tree); p += p & -p {
		s.tree[p] += v
	}
}

func (s *stack) prefix(p int) int64 {
	var sum int64
	for ; p > 0; p -= p & -p {
		sum += s.tree[p]
	}
	return sum
}

// distance is the bytes referenced after position p, plus size: whether
// the key at p is still in an LRU cache of C bytes is distance <= C.
func (s *stack) distance(p int, size int64) int64 {
	return s.total - s.prefix(p) + size
}

// remove frees position p, which holds size bytes.
func (s *stack) remove(p int, size int64) {
	s.add(p, -size)
	s.owner[p] = 0
	s.live--
}

// push puts key h of size bytes on top and returns its position. keys is
// updated when positions are renumbered.
func (s *stack) push(h uint64, size int64, keys map[uint64]keyState) int {
	if s.next >= len(s.tree) {
		s.compact(keys)
	}
	p := s.next
	s.next++
	s.owner[p] = h
	s.live++
	s.add(p, size)
	return p
}

// compact renumbers the live positions 1..n, keeping their order, into a
// tree with room for as many again.
func (s *stack) compact(keys map[uint64]keyState) {
	type ent struct {
		p int
		h uint64
	}
	ents := make([]ent, 0, s.live)
	for p := 1; p < s.next; p++ {
		if s.owner[p] != 0 {
			ents = append(ents, ent{p, s.owner[p]})
		}
	}
	s.reset(max(1<<12, 2*len(ents)+16))
	// Build the tree in O(n): fill the leaves, then push each node's sum
	// up to its parent.
	for i, e := range ents {
		st := keys[e.h]
		st.pos = int32(i + 1)
		keys[e.h] = st
		s.owner[i+1] = e.h
		s.tree[i+1] = st.foot()
		s.total += st.foot()
	}
	for p := 1; p < len(s.tree); p++ {
		if q := p + p&-p; q < len(s.tree) {
			s.tree[q] += s.tree[p]
		}
	}
	s.next = len(ents) + 1
	s.live = len(ents)
}

// order returns the live keys from the least to the most recently used.
func (s *stack) order() []uint64 {
	out := make([]uint64, 0, s.live)
	for p := 1; p < s.next; p++ {
		if s.owner[p] != 0 {
			out = append(out, s.owner[p])
		}
	}
	return out
}

// mrcHist accumulates reads by stack distance, on integer edges about 16
// per doubling, so that the miss ratio at each edge is exact (not
// interpolated) when every key is sampled.
type mrcHist struct {
	hits  []float64 // hits[i]: reads with edges[i-1] < distance <= edges[i]
	reads float64   // all reads, weighted
	cold  float64   // reads of keys not in the stack (first reference, deleted, expired)
	over  float64   // distances beyond the last edge
}

var edges = func() []int64 {
	var e []int64
	for i := 0; i <= 16*50; i++ {
		v := int64(math.Ceil(math.Pow(2, float64(i)/16)))
		if len(e) == 0 || v > e[len(e)-1] {
			e = append(e, v)
		}
	}
	return e
}()

func (m *mrcHist) hit(d int64, w float64) {
	m.reads += w
	i, _ := slices.BinarySearch(edges, d)
	if i == len(edges) {
		m.over += w
		return
	}
	if m.hits == nil {
		m.hits = make([]float64, len(edges))
	}
	m.hits[i] += w
}

func (m *mrcHist) miss(w float64) {
	m.reads += w
	m.cold += w
}

// curve returns the miss ratio at each edge from the first one with a hit
// to the last one. total is the number of reads in the whole log: the
// difference from the sampled reads scaled up is SHARDS_adj's correction
// (FAST'15 §4.2), counted as hits at the smallest distance, which makes up
// for a sample that holds more or fewer of the hottest keys than its
// share.
func (m *mrcHist) curve(total float64) []Point {
	if m.reads == 0 {
		return nil
	}
	adj := 0.0
	if total > 0 {
		adj = total - m.reads
	} else {
		total = m.reads
	}
	first, last := -1, -1
	for i, h := range m.hits {
		if h > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return []Point{{Bytes: 0, MissRatio: max(0, min(1, 1-adj/total))}}
	}
	cum := adj
	for i := 0; i < first; i++ {
		cum += m.hits[i]
	}
	clamp := func(v float64) float64 { return max(0, min(1, v)) }
	pts := []Point{}
	if first > 0 {
		pts = append(pts, Point{Bytes: edges[first-1], MissRatio: clamp(1 - cum/total)})
	}
	for i := first; i <= last; i++ {
		cum += m.hits[i]
		pts = append(pts, Point{Bytes: edges[i], MissRatio: clamp(1 - cum/total)})
	}
	return pts
}

// Point is one point of a miss-ratio curve.
type Point struct {
	Bytes     int64   `json:"bytes"`
	MissRatio float64 `json:"miss_ratio"`
	// Reads is the (scaled) number of reads simulated at this size, for
	// the Petrel curve, whose sizes may be simulated over part of the log.
	Reads float64 `json:"reads,omitempty"`
}

// sizeFor returns the smallest size at which the curve's miss ratio is at
// most target, or 0 when it never gets there.
func sizeFor(pts []Point, target float64) int64 {
	for _, p := range pts {
		if p.MissRatio <= target+1e-12 {
			return p.Bytes
		}
	}
	return 0
}
