package bench

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in nanoseconds, from 1 ns to 100 s, to three
// significant digits.
const (
	histMax    = int64(100 * time.Second)
	histDigits = 3
)

// pending is one request in flight. Replies come back in request order on a
// connection, so the in-flight requests form a ring.
type pending struct {
	kind  opKind
	id    int
	sum   uint64 // set: the state written
	start int64  // ns since the run's epoch
}

// live counters, published once per batch of replies for the progress line.
type live struct {
	ops, hits, misses, errs, latNs atomic.Int64
	maxNs                          atomic.Int64 // largest latency since the reporter last looked
}

// worker drives one connection.
type worker struct {
	idx   int
	cfg   *Config
	ks    *keySpace
	conn  net.Conn
	r     *bufio.Reader
	enc   encoder
	dec   decoder
	rng   *rand.Rand
	zipf  *Zipf
	epoch time.Time

	wbuf      []byte
	ring      []pending
	ids, exp  []int64 // per slot, MultiGet wide: key ids and, verifying, expected states
	idScratch []int
	adds      []int // counters to create: their incr missed
	batchMax  int64 // largest latency in the current batch of replies
	head, n   int
	depth     int
	ver       uint64
	seqPos    int    // next id of a sequential pass (preload, scan); -1 when measuring
	seqKind   opKind // opSet to preload, opGet to scan

	live live
	tot  totals
	hist *hdrhistogram.Histogram
}

// totals are the worker's own counts, read only after it stops.
type totals struct {
	ops, gets, getKeys, hits, misses, sets, deletes, incrs int64
	adds                                                   int64 // counters created after an incr missed
	failed, verified, unverified, mismatches               int64
	foundBytes                                             int64 // key and value bytes of the values read
	errs                                                   map[string]int64
	samples                                                []string
}

func (t *totals) fail(kind string, n int64) {
	if t.errs == nil {
		t.errs = map[string]int64{}
	}
	t.errs[kind] += n
}

func newWorker(idx int, cfg *Config, ks *keySpace, conn net.Conn, epoch time.Time) *worker {
	w := &worker{
		idx: idx, cfg: cfg, ks: ks, conn: conn, epoch: epoch,
		r:      bufio.NewReaderSize(conn, 64<<10),
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(idx)+1)),
		hist:   hdrhistogram.New(1, histMax, histDigits),
		seqPos: -1,
	}
	w.enc = encoder{proto: cfg.Protocol, ks: ks}
	w.dec = decoder{proto: cfg.Protocol, r: w.r, ks: ks, verify: cfg.Verify}
	if cfg.Zipf > 0 {
		w.zipf = NewZipf(cfg.Keys, cfg.Zipf)
	}
	w.setDepth(cfg.Depth)
	return w
}

func (w *worker) setDepth(d int) {
	w.depth, w.head, w.n = d, 0, 0
	w.ring = make([]pending, d)
	w.ids = make([]int64, d*w.cfg.MultiGet)
	w.exp = make([]int64, d*w.cfg.MultiGet)
	w.idScratch = make([]int, w.cfg.MultiGet)
}

func (w *worker) now() int64 { return int64(time.Since(w.epoch)) }

// pickID draws a key id by popularity. Verifying, it moves the id into this
// connection's share of the key space (ids ≡ idx mod conns).
func (w *worker) pickID() int {
	var id int
	if w.zipf != nil {
		id = w.zipf.Rank(w.rng.Float64) - 1
	} else {
		id = w.rng.IntN(w.cfg.Keys)
	}
	if w.cfg.Verify {
		c := w.cfg.Conns
		id = id - id%c + w.idx
		if id >= w.cfg.Keys {
			id -= c
		}
	}
	return id
}

// issue appends one request to the write buffer and the ring.
func (w *worker) issue(now int64) {
	slot := (w.head + w.n) % w.depth
	p := &w.ring[slot]
	*p = pending{start: now}
	w.n++
	if w.seqPos >= 0 {
		p.kind, p.id = w.seqKind, w.seqPos
		w.seqPos += w.cfg.Conns
		if p.kind == opSet {
			w.appendSet(p)
			return
		}
		// A scan reads one key per request, whatever the multi-get width.
		w.ids[slot*w.cfg.MultiGet] = int64(p.id)
		w.idScratch[0] = p.id
		if w.cfg.Verify {
			w.exp[slot*w.cfg.MultiGet] = int64(w.ks.state[p.id].Load())
		}
		w.wbuf = w.enc.appendGet(w.wbuf, w.idScratch[:1])
		return
	}
	if n := len(w.adds); n > 0 {
		p.kind, p.id = opAdd, w.adds[n-1]
		w.adds = w.adds[:n-1]
		w.wbuf = w.enc.appendAdd(w.wbuf, p.id)
		return
	}
	u := w.rng.Float64()
	switch {
	case u < w.cfg.getShare:
		p.kind = opGet
		ids := w.idScratch
		for j := range ids {
			ids[j] = w.pickID()
			w.ids[slot*len(ids)+j] = int64(ids[j])
			if w.cfg.Verify {
				w.exp[slot*len(ids)+j] = int64(w.ks.state[ids[j]].Load())
			}
		}
		w.wbuf = w.enc.appendGet(w.wbuf, ids)
	case u < w.cfg.getShare+w.cfg.setShare:
		p.kind, p.id = opSet, w.pickID()
		w.appendSet(p)
	case u < w.cfg.getShare+w.cfg.setShare+w.cfg.Delete:
		p.kind, p.id = opDelete, w.pickID()
		if w.cfg.Verify {
			w.ks.state[p.id].Store(stateAbsent)
		}
		w.wbuf = w.enc.appendDelete(w.wbuf, p.id)
	default:
		p.kind, p.id = opIncr, w.pickID()
		w.wbuf = w.enc.appendIncr(w.wbuf, p.id)
	}
}

func (w *worker) appendSet(p *pending) {
	w.ver++
	val := w.ks.value(p.id, w.ver<<8^uint64(w.idx))
	if w.cfg.Verify {
		p.sum = checksum(val)
		w.ks.state[p.id].Store(p.sum)
	}
	ttl := 0
	if w.cfg.ttlDist != nil {
		ttl = sizeOf(w.cfg.ttlDist, w.rng.Float64(), 0, 1<<30)
	}
	w.wbuf = w.enc.appendSet(w.wbuf, p.id, val, ttl)
}

// complete reads the reply to the oldest request in flight.
func (w *worker) complete() error {
	slot := w.head
	p := &w.ring[slot]
	t := &w.tot
	var o outcome
	var err error
	switch p.kind {
	case opGet:
		stride, width := w.cfg.MultiGet, w.cfg.MultiGet
		if w.seqPos >= 0 {
			width = 1
		}
		ids := w.idScratch[:width]
		for j := range ids {
			ids[j] = int(w.ids[slot*stride+j])
		}
		exp := w.exp[slot*stride : slot*stride+width]
		found := 0
		o, err = w.dec.get(ids, func(i int, sum uint64) {
			found++
			if i >= 0 {
				t.foundBytes += int64(w.ks.keyLenOf(ids[i])) + int64(sum>>32&0x7fffffff)
			}
			if w.cfg.Verify {
				w.check(ids, exp, i, sum)
			}
		})
		t.gets++
		t.getKeys += int64(width)
		t.hits += int64(found)
		if o != failed {
			t.misses += int64(width - found)
		}
	default:
		o, err = w.dec.simple(p.kind)
		switch p.kind {
		case opSet:
			t.sets++
			if o == failed && w.cfg.Verify {
				// The server kept whatever it had: we no longer know.
				w.ks.state[p.id].CompareAndSwap(p.sum, 0)
			}
		case opDelete:
			t.deletes++
		case opIncr:
			t.incrs++
			if o == miss {
				w.adds = append(w.adds, p.id)
			}
		case opAdd:
			t.adds++
		}
		if p.kind == opDelete || p.kind == opIncr {
			switch o {
			case hit:
				t.hits++
			case miss:
				t.misses++
			}
		}
	}
	if err != nil {
		return err
	}
	if o == failed {
		t.failed++
		t.fail(w.dec.errMsg, 1)
	}
	lat := w.now() - p.start
	w.hist.RecordValue(min(max(lat, 1), histMax))
	t.ops++
	w.live.latNs.Add(lat)
	if lat > w.batchMax {
		w.batchMax = lat
	}
	w.head = (w.head + 1) % w.depth
	w.n--
	return nil
}

// check compares a value read with the checksum of what was last written.
func (w *worker) check(ids []int, exp []int64, i int, sum uint64) {
	t := &w.tot
	var why string
	switch {
	case i < 0:
		why = "a key that was not asked for"
	case exp[i] == 0:
		t.unverified++ // never written in this run
		return
	case uint64(exp[i]) == stateAbsent:
		why = "a deleted key"
	case uint64(exp[i]) != sum:
		why = fmt.Sprintf("len %d crc %08x, want len %d crc %08x", sum>>32&0x7fffffff, uint32(sum),
			uint64(exp[i])>>32&0x7fffffff, uint32(exp[i]))
	default:
		t.verified++
		return
	}
	t.mismatches++
	if len(t.samples) < 5 {
		key := "?"
		if i >= 0 {
			key = string(w.ks.appendKey(nil, ids[i]))
		}
		t.samples = append(t.samples, fmt.Sprintf("conn %d key %s: read %s", w.idx, key, why))
	}
}

// run keeps the pipeline full until stop is set or quota requests have been
// issued (0: no quota), then drains what is in flight.
func (w *worker) run(stop *atomic.Bool, quota int64) error {
	var issued int64
	var last totals
	for {
		if !stop.Load() {
			now := w.now()
			for w.n < w.depth && (quota <= 0 || issued < quota) {
				w.issue(now)
				issued++
			}
		}
		if len(w.wbuf) > 0 {
			if _, err := w.conn.Write(w.wbuf); err != nil {
				return w.broken(fmt.Errorf("write: %w", err))
			}
			w.wbuf = w.wbuf[:0]
		}
		if w.n == 0 {
			return nil
		}
		// Read every reply already buffered, but at least one.
		for {
			if err := w.complete(); err != nil {
				return w.broken(err)
			}
			if w.n == 0 || w.r.Buffered() == 0 {
				break
			}
		}
		t := &w.tot
		for m := w.live.maxNs.Load(); w.batchMax > m && !w.live.maxNs.CompareAndSwap(m, w.batchMax); {
			m = w.live.maxNs.Load()
		}
		w.batchMax = 0
		w.live.ops.Add(t.ops - last.ops)
		w.live.hits.Add(t.hits - last.hits)
		w.live.misses.Add(t.misses - last.misses)
		w.live.errs.Add(t.failed + t.mismatches - last.failed - last.mismatches)
		last = *t
	}
}

// broken records why the connection stopped; requests in flight are lost.
func (w *worker) broken(err error) error {
	kind := "io"
	if errors.Is(err, errDesync) {
		kind = "desync"
	}
	w.tot.fail(kind, int64(w.n))
	w.live.errs.Add(int64(w.n))
	w.n = 0
	return fmt.Errorf("conn %d: %w", w.idx, err)
}
