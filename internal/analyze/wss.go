package analyze

import "sort"

// wssWindow measures the working set over tumbling windows of a fixed
// length: the sampled keys that exist and were referenced in the window,
// and their footprints, scaled by 1/rate when the window closes. Records
// that arrive late (the log is only roughly time-ordered, one ring buffer
// per worker) count in the window that is open.
type wssWindow struct {
	secs   int64
	cur    int64 // index of the open window (start/secs), -1 before any
	keys   map[uint64]int64
	bytes  int64
	points []WSSPoint
}

// WSSPoint is the working set of one window.
type WSSPoint struct {
	Start int64   `json:"start"` // unix seconds
	Keys  float64 `json:"keys"`
	Bytes float64 `json:"bytes"`
}

func newWSSWindow(secs int64) *wssWindow {
	return &wssWindow{secs: secs, cur: -1, keys: map[uint64]int64{}}
}

// advance closes the open window if now is past it.
func (w *wssWindow) advance(now int64, rate float64) {
	i := now / w.secs
	if w.cur < 0 {
		w.cur = i
		return
	}
	if i > w.cur {
		w.close(rate)
		w.cur = i
	}
}

func (w *wssWindow) close(rate float64) {
	w.points = append(w.points, WSSPoint{Start: w.cur * w.secs, Keys: float64(len(w.keys)) / rate, Bytes: float64(w.bytes) / rate})
	clear(w.keys)
	w.bytes = 0
}

// note records that key h exists with footprint foot.
func (w *wssWindow) note(h uint64, foot int64) {
	old, ok := w.keys[h]
	if ok {
		w.bytes -= old
	}
	w.keys[h] = foot
	w.bytes += foot
}

func (w *wssWindow) drop(h uint64) {
	if old, ok := w.keys[h]; ok {
		w.bytes -= old
		delete(w.keys, h)
	}
}

// WSS summarises the working set for one window length.
type WSS struct {
	Window    string     `json:"window"`
	Seconds   int64      `json:"seconds"`
	Windows   int        `json:"windows"` // full windows summarised (the last, partial one is left out when there are others)
	MaxKeys   float64    `json:"max_keys"`
	MeanKeys  float64    `json:"mean_keys"`
	P50Keys   float64    `json:"p50_keys"`
	MaxBytes  float64    `json:"max_bytes"`
	MeanBytes float64    `json:"mean_bytes"`
	P50Bytes  float64    `json:"p50_bytes"`
	Points    []WSSPoint `json:"points"`
}

// summary closes the open window and summarises them all.
func (w *wssWindow) summary(name string, rate float64) WSS {
	if w.cur >= 0 {
		w.close(rate)
		w.cur = -1
	}
	s := WSS{Window: name, Seconds: w.secs, Points: w.points}
	full := w.points
	if len(full) > 1 {
		full = full[:len(full)-1]
	}
	s.Windows = len(full)
	if len(full) == 0 {
		return s
	}
	ks := make([]float64, len(full))
	bs := make([]float64, len(full))
	for i, p := range full {
		ks[i], bs[i] = p.Keys, p.Bytes
		s.MeanKeys += p.Keys / float64(len(full))
		s.MeanBytes += p.Bytes / float64(len(full))
		s.MaxKeys = max(s.MaxKeys, p.Keys)
		s.MaxBytes = max(s.MaxBytes, p.Bytes)
	}
	sort.Float64s(ks)
	sort.Float64s(bs)
	s.P50Keys, s.P50Bytes = ks[(len(ks)-1)/2], bs[(len(bs)-1)/2]
	return s
}
