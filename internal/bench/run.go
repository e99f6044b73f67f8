package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Run runs the workload c against its server and returns the measurement.
// Progress lines, one a second, go to progress unless it is nil.
func Run(ctx context.Context, c Config, progress io.Writer) (*Result, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(c.Threads))
	if c.Server == "null" {
		ns, err := StartNullServer()
		if err != nil {
			return nil, err
		}
		defer ns.Close()
		c.Server = ns.Addr()
	}
	if _, ok := c.ttlDist.(Fixed); ok && c.ttlDist.Quantile(0.5) == 0 {
		c.ttlDist = nil
	}
	ks, err := newKeySpace(&c, c.keyDist, c.valDist)
	if err != nil {
		return nil, err
	}
	epoch := time.Now()
	workers := make([]*worker, c.Conns)
	for i := range workers {
		conn, err := net.DialTimeout("tcp", c.Server, 5*time.Second)
		if err != nil {
			for _, w := range workers[:i] {
				w.conn.Close()
			}
			return nil, fmt.Errorf("connect to %s: %w", c.Server, err)
		}
		defer conn.Close()
		workers[i] = newWorker(i, &c, ks, conn, epoch)
	}
	res := &Result{Name: c.Name, Config: c, Cores: runtime.NumCPU(), Started: epoch.UTC()}

	if c.Preload {
		ph, err := sequential(ctx, &c, workers, opSet, progress)
		res.Preload = ph
		if err != nil {
			return res, err
		}
	}
	if c.Scan {
		ph, err := sequential(ctx, &c, workers, opGet, progress)
		res.Scan = ph
		if err != nil {
			return res, err
		}
	}
	if c.Duration <= 0 && c.Ops <= 0 {
		return res, nil
	}
	start := time.Now()
	errs := phase(ctx, workers, c.Duration, func(i int) int64 {
		if c.Ops <= 0 {
			return 0
		}
		q := c.Ops / int64(c.Conns)
		if int64(i) < c.Ops%int64(c.Conns) {
			q++
		}
		return q
	}, func(el time.Duration, d delta) {
		if progress != nil {
			fmt.Fprintf(progress, "[%4.0fs] %9.0f ops/s  hit %5.1f%%  avg %7.1f µs  max %8.1f µs  errors %d\n",
				el.Seconds(), d.ops/d.secs, 100*ratio(d.hits, d.hits+d.misses), d.latNs/max(d.ops, 1)/1e3, d.maxNs/1e3, int64(d.errs))
		}
	})
	res.collect(workers, time.Since(start))
	return res, errors.Join(errs...)
}

// sequential runs one pass over the whole key space, with deep pipelines,
// outside the measurement: kind opSet preloads every key, opGet scans every
// key to count what the server kept.
func sequential(ctx context.Context, c *Config, workers []*worker, kind opKind, progress io.Writer) (*Phase, error) {
	depth := max(c.Depth, 32)
	for _, w := range workers {
		w.setDepth(depth)
		w.seqPos, w.seqKind = w.idx, kind
	}
	what := map[opKind]string{opSet: "preload", opGet: "scan"}[kind]
	start := time.Now()
	var done int64
	errs := phase(ctx, workers, 0, func(i int) int64 {
		return int64((c.Keys - i + c.Conns - 1) / c.Conns)
	}, func(el time.Duration, d delta) {
		done += int64(d.ops)
		if progress != nil {
			fmt.Fprintf(progress, "[%4.0fs] %s %d/%d keys, %.0f/s, errors %d\n",
				el.Seconds(), what, done, c.Keys, d.ops/d.secs, int64(d.errs))
		}
	})
	ph := &Phase{Seconds: time.Since(start).Seconds(), Errors: map[string]int64{}}
	for _, w := range workers {
		ph.Requests += w.tot.ops
		ph.Found += w.tot.hits
		ph.FoundBytes += w.tot.foundBytes
		for k, v := range w.tot.errs {
			ph.Errors[k] += v
		}
		// What follows starts afresh.
		w.tot, w.live = totals{}, live{}
		w.hist = hdrhistogram.New(1, histMax, histDigits)
		w.seqPos = -1
		w.setDepth(c.Depth)
	}
	ph.PerSec = float64(ph.Requests) / ph.Seconds
	return ph, errors.Join(errs...)
}

// delta is what the workers did in one progress interval.
type delta struct{ secs, ops, hits, misses, errs, latNs, maxNs float64 }

// phase runs every worker until the duration ends (0: no limit) or each has
// issued its quota, reporting once a second.
func phase(ctx context.Context, workers []*worker, d time.Duration, quota func(int) int64,
	report func(time.Duration, delta)) []error {
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.run(&stop, quota(i))
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	start := time.Now()
	var deadline <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var grace <-chan time.Time
	var prev delta
	last := start
	halt := func() {
		if !stop.Swap(true) {
			// A server that stops answering must not hang the run.
			grace = time.After(10 * time.Second)
		}
	}
	for {
		select {
		case <-finished:
			return errs
		case <-ctx.Done():
			halt()
		case <-deadline:
			halt()
		case <-grace:
			for _, w := range workers {
				w.conn.SetDeadline(time.Now())
			}
		case now := <-tick.C:
			var cur delta
			for _, w := range workers {
				cur.ops += float64(w.live.ops.Load())
				cur.hits += float64(w.live.hits.Load())
				cur.misses += float64(w.live.misses.Load())
				cur.errs += float64(w.live.errs.Load())
				cur.latNs += float64(w.live.latNs.Load())
				cur.maxNs = max(cur.maxNs, float64(w.live.maxNs.Swap(0)))
			}
			report(now.Sub(start), delta{
				secs: now.Sub(last).Seconds(), ops: cur.ops - prev.ops, hits: cur.hits - prev.hits,
				misses: cur.misses - prev.misses, errs: cur.errs - prev.errs, latNs: cur.latNs - prev.latNs,
				maxNs: cur.maxNs,
			})
			prev, last = cur, now
		}
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
