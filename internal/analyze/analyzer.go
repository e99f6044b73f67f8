package analyze

import (
	"fmt"
	"math"

	"petrel/internal/cache"
)

// Config says how to analyse.
type Config struct {
	// Rate, in (0, 1], samples keys at a fixed rate (1 samples every key,
	// which makes the LRU curve exact). Zero selects the fixed-size
	// sampler: the rate starts at 1 and halves whenever more than MaxKeys
	// keys are sampled.
	Rate    float64
	MaxKeys int // default 65536
	// SimKeys bounds the keys replayed through the Petrel simulation, a
	// nested sample of the first (default 8192; negative: no bound beyond
	// the first sample's). Each simulated request costs a dozen or more
	// cache operations, so this sample is the smaller one.
	SimKeys int
	// Policy, SegmentSize: the Petrel configuration to simulate (default
	// FIFO eviction, 1 MiB segments).
	Policy      cache.Policy
	SegmentSize int
	// SimMemory bounds the largest simulated cache (the miniature, after
	// sampling); default 32 MiB. Negative turns the Petrel simulation off.
	SimMemory int64
	Interval  int64 // seconds per timeline and heat-map column; default 60
	TopKeys   int   // hottest keys reported; default 20
}

// heatBands is the number of key bands (by hash) in the heat map.
const heatBands = 64

// wssWindows are the working-set window lengths.
var wssWindows = []struct {
	name string
	secs int64
}{{"1m", 60}, {"10m", 600}, {"1h", 3600}}

// Analyzer consumes log records and builds a Report. It is not safe for
// concurrent use.
type Analyzer struct {
	cfg Config

	lines, malformed, comments, records uint64
	inputs                              []string
	first, last                         int64 // unix microseconds
	bytesIn                             int64

	// sampling
	rate      float64
	all       bool   // every key sampled
	thresh    uint64 // sampled when hash < thresh
	halvings  int
	fixedSize bool
	sampled   uint64 // sampled records
	// keyedReads counts every read, sampled or not (SHARDS_adj).
	keyedReads uint64
	outOfRange uint64 // records too far in time from the first one

	// The Petrel simulation's nested sample: hash < simThresh (all if
	// simAll), at most cfg.SimKeys keys.
	simAll      bool
	simThresh   uint64
	simRate     float64
	simHalvings int
	simKeys     int // existing keys in the nested sample
	simSampled  uint64

	keys map[uint64]keyState
	st   *stack
	mrc  mrcHist
	sim  *simQueue
	wss  []*wssWindow

	keySizes, valSizes, ttls Hist
	noTTL                    uint64
	cmds                     map[string]uint64
	results                  [numResults]uint64
	t0                       int64 // seconds, start of timeline column 0
	timeline                 []window
	heat                     [][heatBands]uint32
	top                      *spaceSaving
	err                      error
}

type window struct {
	classes      [numClasses]uint64
	hits, misses uint64
}

// keyState is what the analyzer knows of a sampled key that exists.
type keyState struct {
	pos  int32 // position in the LRU stack
	klen uint16
	vlen int64
	exp  int64 // absolute unix seconds, 0 for never
}

// foot is the key's footprint in bytes as Petrel stores it
// (cache.ItemSize: the item header, the key and the value; client flags are
// not counted). Both curves and the working set use it, so their sizes are
// comparable with petrel serve -m.
func (k keyState) foot() int64 { return itemFoot(int(k.klen), k.vlen) }

func itemFoot(klen int, vlen int64) int64 { return int64(cache.ItemSize(klen, int(vlen), 0)) }

// New returns an Analyzer for cfg.
func New(cfg Config) (*Analyzer, error) {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 65536
	}
	if cfg.SimKeys == 0 {
		cfg.SimKeys = 8192
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = 1 << 20
	}
	if cfg.SimMemory == 0 {
		cfg.SimMemory = 32 << 20
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 60
	}
	if cfg.TopKeys <= 0 {
		cfg.TopKeys = 20
	}
	if cfg.Rate < 0 || cfg.Rate > 1 || math.IsNaN(cfg.Rate) {
		return nil, fmt.Errorf("sampling rate %g out of (0, 1]", cfg.Rate)
	}
	a := &Analyzer{
		cfg:  cfg,
		keys: map[uint64]keyState{},
		st:   newStack(),
		cmds: map[string]uint64{},
		// Monitoring 50 times as many keys as are reported keeps the
		// reported counts' error bounds small on skewed traces.
		top:   newSpaceSaving(max(1000, 50*cfg.TopKeys)),
		first: -1,
	}
	for _, w := range wssWindows {
		a.wss = append(a.wss, newWSSWindow(w.secs))
	}
	switch {
	case cfg.Rate == 0:
		a.fixedSize = true
		a.rate, a.all = 1, true
	case cfg.Rate == 1:
		a.rate, a.all = 1, true
	default:
		a.rate = cfg.Rate
		a.thresh = uint64(cfg.Rate * (1 << 64))
	}
	a.simAll, a.simThresh, a.simRate = a.all, a.thresh, a.rate
	if cfg.SimMemory > 0 {
		sim := newSimulator(cfg.Policy, cfg.SegmentSize, cfg.SimMemory)
		if err := sim.setRate(a.simRate, nil, 0); err != nil {
			return nil, err
		}
		a.sim = newSimQueue(sim)
	}
	return a, nil
}

// Add accounts one record.
func (a *Analyzer) Add(r *Record) {
	a.records++
	sec := r.Micros / 1e6
	if a.first < 0 || r.Micros < a.first {
		a.first = r.Micros
	}
	a.last = max(a.last, r.Micros)

	if c, ok := a.cmds[string(r.Cmd)]; ok {
		a.cmds[string(r.Cmd)] = c + 1
	} else if len(a.cmds) < maxCommands {
		a.cmds[string(r.Cmd)] = 1
	} else {
		a.cmds["(others)"]++
	}
	a.results[r.Result]++
	col := a.column(sec)
	if col >= 0 {
		win := &a.timeline[col]
		win.classes[r.Class]++
		if r.Class == ClassRead {
			switch r.Result {
			case ResHit:
				win.hits++
			case ResMiss:
				win.misses++
			}
		}
	}
	if r.Key != nil {
		a.keySizes.Add(int64(r.KeyLen))
	}
	if (r.Class == ClassStore && r.Result == ResStored) || (r.Class == ClassRead && r.Result == ResHit) {
		a.valSizes.Add(r.VLen)
	}
	if r.Class == ClassStore || r.Class == ClassTouch || r.Gat {
		switch {
		case r.TTL == 0:
			a.noTTL++
		case r.TTL > maxRelTTL:
			a.ttls.Add(r.TTL - sec)
		default:
			a.ttls.Add(r.TTL)
		}
	}
	if r.Class == ClassFlush {
		a.flushAll(sec)
		return
	}
	if r.Key == nil {
		return
	}
	if r.Class == ClassRead {
		a.keyedReads++
	}
	h := keyHash(r.Key)
	a.top.add(h, r.Key)
	if col >= 0 {
		a.heat[col][h>>(64-6)]++
	}
	if a.all || h < a.thresh {
		a.sample(r, h, sec)
	}
}

// maxRelTTL is memcached's cut-off: larger exptimes are absolute times.
const maxRelTTL = 30 * 24 * 3600

// absExp turns an exptime as sent into absolute seconds (0 = never).
func absExp(ttl, now int64) int64 {
	switch {
	case ttl == 0:
		return 0
	case ttl < 0:
		return now - 1
	case ttl <= maxRelTTL:
		return now + ttl
	}
	return ttl
}

// maxCommands bounds the distinct command names counted one by one, so a
// log of garbage cannot grow the table without bound.
const maxCommands = 256

// maxColumns bounds the timeline (two years of minutes): a record dated
// further from the first one is counted in OutOfRange and left out of the
// timeline and heat map.
const maxColumns = 1 << 20

// column returns the timeline column of sec, or -1 when it is out of range.
func (a *Analyzer) column(sec int64) int {
	if len(a.timeline) == 0 {
		a.t0 = sec - sec%a.cfg.Interval
	}
	d := (sec - a.t0) / a.cfg.Interval
	if d >= maxColumns || d < -maxColumns {
		a.outOfRange++
		return -1
	}
	i := max(0, int(d))
	for len(a.timeline) <= i {
		a.timeline = append(a.timeline, window{})
		a.heat = append(a.heat, [heatBands]uint32{})
	}
	return i
}

// sample runs a sampled record through the stack, the working-set windows
// and the simulated caches.
func (a *Analyzer) sample(r *Record, h uint64, sec int64) {
	a.sampled++
	sim := a.sim
	if sim != nil && !(a.simAll || h < a.simThresh) {
		sim = nil
	}
	if sim != nil {
		a.simSampled++
	}
	for _, w := range a.wss {
		w.advance(sec, a.rate)
	}
	st, known := a.keys[h]
	if known && st.exp != 0 && st.exp <= sec {
		a.forget(h, st)
		known = false
	}
	wt, swt := 1/a.rate, 1/a.simRate
	switch r.Class {
	case ClassRead:
		exp := st.exp
		if r.Gat {
			exp = absExp(r.TTL, sec)
		}
		if known {
			d := a.st.distance(int(st.pos), st.foot())
			if !a.all {
				d = int64(float64(d) / a.rate)
			}
			a.mrc.hit(d, wt)
			if sim != nil {
				sim.push(simOp{kind: opRead, h: h, now: sec, w: swt, fill: true, klen: int(st.klen), vlen: st.vlen, exp: exp, setExp: r.Gat})
			}
			st.exp = exp
			a.ref(h, st, true)
		} else {
			a.mrc.miss(wt)
			// A hit on a key the analyzer has not seen yet (stored before
			// the log began) shows the key exists: fill it.
			fill := r.Result == ResHit
			if !r.Gat {
				exp = 0
			}
			if sim != nil {
				sim.push(simOp{kind: opRead, h: h, now: sec, w: swt, fill: fill, klen: r.KeyLen, vlen: r.VLen, exp: exp, setExp: r.Gat})
			}
			if fill {
				a.ref(h, keyState{klen: uint16(min(r.KeyLen, math.MaxUint16)), vlen: r.VLen, exp: exp}, false)
			}
		}
	case ClassStore:
		if r.Result != ResStored && r.Result != ResOK {
			return
		}
		vlen := r.VLen
		if r.Append {
			if !known {
				return
			}
			vlen += st.vlen
		}
		exp := absExp(r.TTL, sec)
		if r.Append {
			exp = st.exp // append and prepend keep the item's exptime
		}
		if exp != 0 && exp <= sec {
			a.remove(h, st, known, sim)
			return
		}
		ns := keyState{pos: st.pos, klen: uint16(min(r.KeyLen, math.MaxUint16)), vlen: vlen, exp: exp}
		a.ref(h, ns, known)
		if sim != nil {
			sim.push(simOp{kind: opStore, h: h, now: sec, klen: int(ns.klen), vlen: vlen, exp: exp, flags: r.Flags})
		}
	case ClassArith, ClassTouch:
		if !known || r.Result == ResMiss || r.Result == ResNotFound || r.Result == ResError || r.Result == ResNotStored {
			return
		}
		setExp := r.Class == ClassTouch
		if setExp {
			st.exp = absExp(r.TTL, sec)
			if st.exp != 0 && st.exp <= sec {
				a.remove(h, st, true, sim)
				return
			}
		}
		a.ref(h, st, true)
		if sim != nil {
			sim.push(simOp{kind: opTouch, h: h, now: sec, exp: st.exp, setExp: setExp})
		}
	case ClassDelete:
		if known {
			a.remove(h, st, true, sim)
		}
	}
	if a.fixedSize && len(a.keys) > a.cfg.MaxKeys {
		a.halve()
	}
	if a.cfg.SimKeys > 0 && a.simKeys > a.cfg.SimKeys {
		a.halveSim()
	}
}

// ref moves key h to the top of the stack with its new state (the old
// position, if known, is st's... as stored in the map).
func (a *Analyzer) ref(h uint64, st keyState, known bool) {
	if known {
		old := a.keys[h]
		a.st.remove(int(old.pos), old.foot())
	}
	st.pos = int32(a.st.push(h, st.foot(), a.keys))
	a.keys[h] = st
	if !known && (a.simAll || h < a.simThresh) {
		a.simKeys++
	}
	for _, w := range a.wss {
		w.note(h, st.foot())
	}
}

// forget drops a key from the analyzer's state (it no longer exists).
func (a *Analyzer) forget(h uint64, st keyState) {
	a.st.remove(int(st.pos), st.foot())
	delete(a.keys, h)
	if a.simAll || h < a.simThresh {
		a.simKeys--
	}
}

// remove deletes an existing key from the state and the simulated caches.
func (a *Analyzer) remove(h uint64, st keyState, known bool, sim *simQueue) {
	if known {
		a.forget(h, st)
	}
	if sim != nil {
		sim.push(simOp{kind: opRemove, h: h})
	}
}

func (a *Analyzer) flushAll(sec int64) {
	a.keys = map[uint64]keyState{}
	a.st = newStack()
	a.simKeys = 0
	if a.sim != nil {
		a.sim.push(simOp{kind: opFlush, now: sec})
	}
}

// halve halves the fixed-size sampler's rate until the sample fits,
// dropping the keys above the new threshold everywhere.
func (a *Analyzer) halve() {
	for len(a.keys) > a.cfg.MaxKeys && a.halvings < 63 {
		a.halvings++
		a.thresh = 1 << (64 - a.halvings)
		a.all = false
		a.rate = math.Ldexp(1, -a.halvings)
		for h, st := range a.keys {
			if h >= a.thresh {
				a.forget(h, st)
				for _, w := range a.wss {
					w.drop(h)
				}
			}
		}
	}
	if a.simAll || a.simThresh > a.thresh {
		a.simAll, a.simThresh, a.simRate = false, a.thresh, a.rate
		a.resample()
	}
}

// halveSim halves the nested sample's rate until it holds at most
// cfg.SimKeys keys.
func (a *Analyzer) halveSim() {
	for a.simKeys > a.cfg.SimKeys && a.simRate > 0x1p-63 {
		a.simHalvings++
		if a.simAll {
			a.simAll, a.simThresh = false, 1<<63
		} else {
			a.simThresh /= 2
		}
		a.simRate /= 2
		a.simKeys = 0
		for h := range a.keys {
			if h < a.simThresh {
				a.simKeys++
			}
		}
	}
	a.resample()
}

// resample rebuilds the simulated caches for the nested sample's new rate.
func (a *Analyzer) resample() {
	a.simKeys = 0
	var order []uint64
	for _, h := range a.st.order() {
		if a.simAll || h < a.simThresh {
			order = append(order, h)
		}
	}
	a.simKeys = len(order)
	if a.sim == nil {
		return
	}
	a.sim.push(simOp{kind: opRate, w: a.simRate, order: order, seen: a.keyedReads})
}
