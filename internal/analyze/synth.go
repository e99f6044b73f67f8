package analyze

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
)

// SynthConfig describes a synthetic command log: a look-aside cache in
// front of a database, with Zipf-distributed key popularity.
type SynthConfig struct {
	Lines    int     // records to write
	Keys     uint64  // key space
	Skew     float64 // Zipf exponent s > 1 (math/rand's Zipf); default 1.1
	ReadFrac float64 // fraction of requests that are gets; default 0.9
	DelFrac  float64 // fraction that are deletes; default 0.01
	Rate     float64 // requests per second of log time; default 1000
	Start    int64   // unix seconds of the first record; default 1732200000
	Seed     uint64
	// CacheItems, when > 0, models the logging server as an LRU of that
	// many items, so gets miss on evicted keys; 0 is an infinite cache.
	CacheItems int
}

// ValueSize is the synthetic value length of key i: 16 B to about 8 KiB,
// fixed per key, mostly small.
func synthValueSize(i uint64) int64 {
	h := keyHash([]byte(fmt.Sprint(i)))
	e := (h % 10) * ((h >> 8) % 10) / 10
	return 16<<e + int64((h>>16)%16)
}

// Synth writes a v1 command log. A get of a key the modelled cache holds
// is a hit; a miss is followed by the client's set of the key (TTL 0 or
// one hour), as a look-aside client does.
func Synth(w io.Writer, cfg SynthConfig) error {
	if cfg.Keys == 0 {
		cfg.Keys = 100000
	}
	if cfg.Skew <= 1 {
		cfg.Skew = 1.1
	}
	if cfg.ReadFrac == 0 {
		cfg.ReadFrac = 0.9
	}
	if cfg.DelFrac == 0 {
		cfg.DelFrac = 0.01
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1000
	}
	if cfg.Start == 0 {
		cfg.Start = 1732200000
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	zipf := rand.NewZipf(rng, cfg.Skew, 1, cfg.Keys-1)
	// Scatter popularity over the key names, so hot keys are not all
	// small numbers.
	perm := func(i uint64) uint64 { return (i*0x9e3779b97f4a7c15 + cfg.Seed) % (cfg.Keys * 7919) }
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintln(bw, Header)
	lru := newSynthLRU(cfg.CacheItems)
	us := cfg.Start * 1e6
	step := 1e6 / cfg.Rate
	clients := []string{"10.0.0.1:50000", "10.0.0.2:50001", "10.0.0.3:50002", "[::1]:50003"}
	var kb []byte
	for n, t := 0, float64(us); n < cfg.Lines; n++ {
		t += step * (0.5 + rng.Float64())
		ts := int64(t)
		k := perm(zipf.Uint64())
		kb = fmt.Appendf(kb[:0], "user:%d:profile", k)
		vlen := synthValueSize(k)
		client := clients[rng.IntN(len(clients))]
		stamp := fmt.Sprintf("%d.%06d %s", ts/1e6, ts%1e6, client)
		ttl := int64(0)
		if k%3 == 0 {
			ttl = 3600
		}
		switch p := rng.Float64(); {
		case p < cfg.DelFrac:
			res := "not_found"
			if lru.remove(k) {
				res = "deleted"
			}
			fmt.Fprintf(bw, "%s delete %s 0 0 0 %s %d\n", stamp, kb, res, len(res)+2)
		case p < cfg.DelFrac+cfg.ReadFrac:
			if lru.get(k, ts/1e6) {
				fmt.Fprintf(bw, "%s get %s 0 %d 0 hit %d\n", stamp, kb, vlen, vlen+int64(len(kb))+20)
				continue
			}
			fmt.Fprintf(bw, "%s get %s 0 0 0 miss 5\n", stamp, kb)
			n++
			if n >= cfg.Lines {
				break
			}
			fmt.Fprintf(bw, "%s set %s 0 %d %d stored 8\n", stamp, kb, vlen, ttl)
			lru.set(k, ts/1e6, ttl)
		default:
			fmt.Fprintf(bw, "%s set %s 0 %d %d stored 8\n", stamp, kb, vlen, ttl)
			lru.set(k, ts/1e6, ttl)
		}
	}
	return bw.Flush()
}

// synthLRU is the modelled server: an LRU of n items (or unbounded) with
// expiry.
type synthLRU struct {
	n     int
	exp   map[uint64]int64 // key -> absolute exptime, 0 never
	order map[uint64]uint64
	queue []uint64 // keys in order of last use; stale entries skipped
	tick  uint64
	ticks []uint64
}

func newSynthLRU(n int) *synthLRU {
	return &synthLRU{n: n, exp: map[uint64]int64{}, order: map[uint64]uint64{}}
}

func (l *synthLRU) use(k uint64) {
	l.tick++
	l.order[k] = l.tick
	l.queue = append(l.queue, k)
	l.ticks = append(l.ticks, l.tick)
	for l.n > 0 && len(l.exp) > l.n {
		k0, t0 := l.queue[0], l.ticks[0]
		l.queue, l.ticks = l.queue[1:], l.ticks[1:]
		if l.order[k0] == t0 {
			delete(l.exp, k0)
			delete(l.order, k0)
		}
	}
	if len(l.queue) > 4*len(l.exp)+1024 {
		q, t := l.queue[:0:0], l.ticks[:0:0]
		for i, k := range l.queue {
			if l.order[k] == l.ticks[i] {
				q, t = append(q, k), append(t, l.ticks[i])
			}
		}
		l.queue, l.ticks = q, t
	}
}

func (l *synthLRU) get(k uint64, now int64) bool {
	e, ok := l.exp[k]
	if !ok {
		return false
	}
	if e != 0 && e <= now {
		l.remove(k)
		return false
	}
	l.use(k)
	return true
}

func (l *synthLRU) set(k uint64, now, ttl int64) {
	e := int64(0)
	if ttl > 0 {
		e = now + ttl
	}
	l.exp[k] = e
	l.use(k)
}

func (l *synthLRU) remove(k uint64) bool {
	_, ok := l.exp[k]
	delete(l.exp, k)
	delete(l.order, k)
	return ok
}
