package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is one run's measurement, as written to the JSON result file.
type Result struct {
	Name    string    `json:"name"`
	Config  Config    `json:"config"`
	Cores   int       `json:"cores"`
	Started time.Time `json:"started"`
	Preload *Phase    `json:"preload,omitempty"`
	Scan    *Phase    `json:"scan,omitempty"`

	Seconds    float64 `json:"seconds"`
	Ops        int64   `json:"ops"` // requests; a multi-get is one
	OpsPerSec  float64 `json:"ops_per_sec"`
	KeysPerSec float64 `json:"keys_per_sec"` // keys fetched or written
	Gets       int64   `json:"gets"`
	GetKeys    int64   `json:"get_keys"`
	Sets       int64   `json:"sets"`
	Deletes    int64   `json:"deletes"`
	Incrs      int64   `json:"incrs"`
	Adds       int64   `json:"adds"` // counters created after their incr missed
	Hits       int64   `json:"hits"`
	Misses     int64   `json:"misses"`
	HitRatio   float64 `json:"hit_ratio"` // over get keys, deletes and incrs

	ErrorCount int64            `json:"error_count"`
	Errors     map[string]int64 `json:"errors"` // by kind: the server's error line, "io", "desync"

	Verified   int64    `json:"verified"`   // values read and found equal to what was written
	Unverified int64    `json:"unverified"` // values read of keys not written in this run
	Mismatches int64    `json:"mismatches"`
	Samples    []string `json:"mismatch_samples,omitempty"`

	Latency Latency `json:"latency_us"`
}

// Phase summarises a pass over the whole key space: the preload (sets) or
// the scan (gets).
type Phase struct {
	Requests   int64            `json:"requests"`
	Found      int64            `json:"found,omitempty"`       // scan: keys the server still had
	FoundBytes int64            `json:"found_bytes,omitempty"` // scan: their key and value bytes
	Seconds    float64          `json:"seconds"`
	PerSec     float64          `json:"per_sec"`
	Errors     map[string]int64 `json:"errors"`
}

// Latency percentiles in microseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func (r *Result) collect(workers []*worker, elapsed time.Duration) {
	h := hdrhistogram.New(1, histMax, histDigits)
	r.Errors = map[string]int64{}
	for _, w := range workers {
		t := &w.tot
		h.Merge(w.hist)
		r.Ops += t.ops
		r.Gets += t.gets
		r.GetKeys += t.getKeys
		r.Sets += t.sets
		r.Deletes += t.deletes
		r.Incrs += t.incrs
		r.Adds += t.adds
		r.Hits += t.hits
		r.Misses += t.misses
		r.Verified += t.verified
		r.Unverified += t.unverified
		r.Mismatches += t.mismatches
		for k, v := range t.errs {
			r.Errors[k] += v
			r.ErrorCount += v
		}
		for _, s := range t.samples {
			if len(r.Samples) < 10 {
				r.Samples = append(r.Samples, s)
			}
		}
	}
	r.Seconds = elapsed.Seconds()
	r.OpsPerSec = float64(r.Ops) / r.Seconds
	r.KeysPerSec = float64(r.GetKeys+r.Sets+r.Deletes+r.Incrs+r.Adds) / r.Seconds
	r.HitRatio = ratio(float64(r.Hits), float64(r.Hits+r.Misses))
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	r.Latency = Latency{
		Mean: h.Mean() / 1e3, P50: us(h.ValueAtQuantile(50)), P90: us(h.ValueAtQuantile(90)),
		P99: us(h.ValueAtQuantile(99)), P999: us(h.ValueAtQuantile(99.9)), Max: us(h.Max()),
	}
}

// WriteJSON writes r to path.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// Print writes a human summary.
func (r *Result) Print(w io.Writer) {
	c := &r.Config
	fmt.Fprintf(w, "workload %s: %s %s, %d conns x depth %d, %d threads, keys %d (zipf %g), key %s, value %s, get:set %s",
		r.Name, c.Protocol, c.Server, c.Conns, c.Depth, c.Threads, c.Keys, c.Zipf, c.KeySize, c.Value, c.Ratio)
	if c.MultiGet > 1 {
		fmt.Fprintf(w, ", multiget %d", c.MultiGet)
	}
	fmt.Fprintln(w)
	if p := r.Preload; p != nil {
		fmt.Fprintf(w, "preload:   %d sets in %.1fs (%.0f/s), errors %v\n", p.Requests, p.Seconds, p.PerSec, p.Errors)
	}
	if p := r.Scan; p != nil {
		fmt.Fprintf(w, "scan:      %d of %d keys present, %d key+value bytes, in %.1fs, errors %v\n",
			p.Found, p.Requests, p.FoundBytes, p.Seconds, p.Errors)
	}
	if r.Ops == 0 {
		return
	}
	fmt.Fprintf(w, "ops:       %d in %.2fs = %.0f ops/s (%.0f keys/s)\n", r.Ops, r.Seconds, r.OpsPerSec, r.KeysPerSec)
	fmt.Fprintf(w, "mix:       %d gets (%d keys), %d sets, %d deletes, %d incrs, %d adds of missing counters\n",
		r.Gets, r.GetKeys, r.Sets, r.Deletes, r.Incrs, r.Adds)
	fmt.Fprintf(w, "hit ratio: %.4f (%d hits, %d misses)\n", r.HitRatio, r.Hits, r.Misses)
	l := r.Latency
	fmt.Fprintf(w, "latency:   mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f µs\n",
		l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(w, "errors:    %d", r.ErrorCount)
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "  %q: %d", k, r.Errors[k])
	}
	fmt.Fprintln(w)
	if c.Verify {
		fmt.Fprintf(w, "verify:    %d values verified, %d of keys not written in this run, %d MISMATCHES\n",
			r.Verified, r.Unverified, r.Mismatches)
		for _, s := range r.Samples {
			fmt.Fprintf(w, "  mismatch: %s\n", s)
		}
	}
}
