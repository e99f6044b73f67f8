package analyze

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// wssTrace: sets and gets over 30 minutes, key popularity drifting so
// windows differ. Every get is of a key already set.
func wssTrace(n int, seed uint64) []op {
	rng := rand.New(rand.NewPCG(seed, 3))
	var ops []op
	set := map[string]bool{}
	for i := range n {
		sec := int64(1700000000 + i*1800/n)
		base := uint64(i * 2000 / n)
		key := fmt.Sprintf("w%d", base+uint64(rng.IntN(3000)))
		vlen := int64(rng.IntN(200))
		if set[key] && rng.IntN(4) != 0 {
			ops = append(ops, op{sec, "get", key, 0, 0, "hit"})
			continue
		}
		set[key] = true
		ops = append(ops, op{sec, "set", key, vlen, 0, "stored"})
	}
	return ops
}

// exactWSS counts keys and footprints per window of secs.
func exactWSS(ops []op, secs int64) []WSSPoint {
	size := map[string]int64{}
	var pts []WSSPoint
	var cur int64 = -1
	inWin := map[string]int64{}
	flush := func() {
		var b int64
		for _, f := range inWin {
			b += f
		}
		pts = append(pts, WSSPoint{Start: cur * secs, Keys: float64(len(inWin)), Bytes: float64(b)})
		clear(inWin)
	}
	for _, o := range ops {
		if w := o.sec / secs; w != cur {
			if cur >= 0 {
				flush()
			}
			cur = w
		}
		if o.cmd == "set" {
			size[o.key] = itemFoot(len(o.key), o.vlen)
		}
		inWin[o.key] = size[o.key]
	}
	flush()
	return pts
}

func TestWSSExact(t *testing.T) {
	ops := wssTrace(50000, 1)
	r := analyzeOps(t, Config{Rate: 1, SimMemory: -1}, ops)
	for i, w := range r.WSS {
		want := exactWSS(ops, wssWindows[i].secs)
		if len(w.Points) != len(want) {
			t.Fatalf("%s: %d windows, want %d", w.Window, len(w.Points), len(want))
		}
		for j := range want {
			if w.Points[j] != want[j] {
				t.Fatalf("%s window %d: %+v, want %+v", w.Window, j, w.Points[j], want[j])
			}
		}
	}
	if r.WSS[0].Windows != 30 || r.WSS[0].MaxKeys < r.WSS[0].P50Keys || r.WSS[0].MeanKeys == 0 {
		t.Fatalf("1m summary %+v", r.WSS[0])
	}
}

func TestWSSSampled(t *testing.T) {
	ops := wssTrace(200000, 2)
	r := analyzeOps(t, Config{Rate: 0.25, SimMemory: -1}, ops)
	want := exactWSS(ops, 600)
	for j, p := range r.WSS[1].Points {
		for _, e := range [][2]float64{{p.Keys, want[j].Keys}, {p.Bytes, want[j].Bytes}} {
			if math.Abs(e[0]-e[1]) > 0.1*e[1] {
				t.Fatalf("10m window %d: %+v, exact %+v (tolerance 10%%)", j, p, want[j])
			}
		}
	}
}
