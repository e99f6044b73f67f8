package analyze

import "sort"

// spaceSaving is Metwally et al.'s Space-Saving top-k summary: k counters;
// a key not monitored replaces the smallest counter and inherits its count
// as the error. Any key requested more than N/k times is monitored, and a
// monitored key's true count lies in [count-err, count]. The counters are
// a min-heap so replacing the smallest is O(log k).
type spaceSaving struct {
	k    int
	ents []ssEntry      // counters; an entry keeps its slot for life
	heap []int32        // slots, a min-heap by count
	pos  []int32        // slot -> heap position
	idx  map[uint64]int // key hash -> slot
}

type ssEntry struct {
	h     uint64
	count uint64
	err   uint64
	key   string
}

func newSpaceSaving(k int) *spaceSaving {
	return &spaceSaving{k: k, idx: make(map[uint64]int, k)}
}

func (s *spaceSaving) add(h uint64, key []byte) {
	if i, ok := s.idx[h]; ok {
		s.ents[i].count++
		s.down(int(s.pos[i]))
		return
	}
	if len(s.ents) < s.k {
		i := len(s.ents)
		s.ents = append(s.ents, ssEntry{h: h, count: 1, key: string(key)})
		s.heap = append(s.heap, int32(i))
		s.pos = append(s.pos, int32(i))
		s.idx[h] = i
		s.up(i)
		return
	}
	i := s.heap[0]
	e := &s.ents[i]
	delete(s.idx, e.h)
	*e = ssEntry{h: h, count: e.count + 1, err: e.count, key: string(key)}
	s.idx[h] = int(i)
	s.down(0)
}

func (s *spaceSaving) less(a, b int) bool { return s.ents[s.heap[a]].count < s.ents[s.heap[b]].count }

func (s *spaceSaving) swap(a, b int) {
	s.heap[a], s.heap[b] = s.heap[b], s.heap[a]
	s.pos[s.heap[a]] = int32(a)
	s.pos[s.heap[b]] = int32(b)
}

func (s *spaceSaving) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *spaceSaving) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}

// KeyCount is one of the hottest keys: Count requests, of which up to
// Error may belong to keys it replaced in the summary.
type KeyCount struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
	Error uint64 `json:"error"`
}

// top returns the n largest counters, largest first.
func (s *spaceSaving) top(n int) []KeyCount {
	out := make([]KeyCount, 0, len(s.ents))
	for _, e := range s.ents {
		out = append(out, KeyCount{Key: e.key, Count: e.count, Error: e.err})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out[:min(n, len(out))]
}
