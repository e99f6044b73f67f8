package analyze

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is the analysis, as printed (Text) and as JSON.
type Report struct {
	Inputs    []string `json:"inputs"`
	Lines     uint64   `json:"lines"`
	Records   uint64   `json:"records"`
	Malformed uint64   `json:"malformed"` // skipped
	Comments  uint64   `json:"comments"`
	// OutOfRange counts records dated over two years (of intervals) from
	// the first one, left out of the timeline and heat map.
	OutOfRange uint64  `json:"out_of_range,omitempty"`
	Bytes      int64   `json:"bytes"` // of log text
	Start      float64 `json:"start"` // unix seconds of the first and last record
	End        float64 `json:"end"`

	Sampling Sampling `json:"sampling"`

	Commands []NameCount `json:"commands"`
	Results  []NameCount `json:"results"`
	Reads    uint64      `json:"reads"`
	HitRatio float64     `json:"hit_ratio"` // hits/(hits+misses) of reads, as logged
	Interval int64       `json:"interval"`  // seconds per timeline window
	Timeline []Window    `json:"timeline"`

	KeySizes   Dist   `json:"key_sizes"`
	ValueSizes Dist   `json:"value_sizes"` // stored values and values returned by hits
	TTLs       Dist   `json:"ttls"`        // relative seconds, of storage, touch and gat commands with a TTL
	NoTTL      uint64 `json:"no_ttl"`      // of those, without one

	WSS []WSS `json:"wss"`

	MRC     MRC      `json:"mrc"`
	Targets []Target `json:"targets"`

	TopKeys []KeyCount `json:"top_keys"`
	Heatmap Heatmap    `json:"heatmap"`
}

// Sampling describes the SHARDS sample.
type Sampling struct {
	Mode     string  `json:"mode"` // "fixed-rate" or "fixed-size"
	Rate     float64 `json:"rate"` // final rate: every key with hash < rate·2^64
	MaxKeys  int     `json:"max_keys,omitempty"`
	Halvings int     `json:"halvings,omitempty"`
	Keys     int     `json:"keys"`    // sampled keys held at the end
	Records  uint64  `json:"records"` // sampled records
	// The Petrel simulation replays a nested sample: keys with hash <
	// SimRate·2^64, at most SimMaxKeys of them.
	SimRate        float64 `json:"sim_rate"`
	SimMaxKeys     int     `json:"sim_max_keys"`
	SimRecords     uint64  `json:"sim_records"`
	SimTooLarge    uint64  `json:"sim_too_large,omitempty"`
	SimSegmentSize int     `json:"sim_segment_size"`
}

// NameCount is a count by name.
type NameCount struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// Window is one timeline window.
type Window struct {
	Start    int64   `json:"start"`
	Requests uint64  `json:"requests"`
	Reads    uint64  `json:"reads"`
	Stores   uint64  `json:"stores"`
	Deletes  uint64  `json:"deletes"`
	Other    uint64  `json:"other"` // arithmetic, touch, flush and the rest
	Hits     uint64  `json:"hits"`
	Misses   uint64  `json:"misses"`
	HitRatio float64 `json:"hit_ratio"`
}

// MRC holds the miss-ratio curves: the fraction of reads that miss
// against the cache size in bytes (item footprints as cache.ItemSize
// counts them: header, key, value).
type MRC struct {
	Policy string  `json:"policy"`
	LRU    []Point `json:"lru"`
	Petrel []Point `json:"petrel"`
	// ColdMissRatio is the floor of both curves: reads of keys with no
	// value at that point (never stored, deleted or expired).
	ColdMissRatio float64 `json:"cold_miss_ratio"`
}

// Target is the cache size needed for a hit ratio; 0 when no simulated
// size reaches it.
type Target struct {
	HitRatio    float64 `json:"hit_ratio"`
	LRUBytes    int64   `json:"lru_bytes"`
	PetrelBytes int64   `json:"petrel_bytes"`
}

// Heatmap is the request rate per key band over time. Keys are banded by
// hash; bands are sorted by total requests, hottest first (row 0).
type Heatmap struct {
	Start    int64       `json:"start"`
	Interval int64       `json:"interval"` // seconds per column
	Bands    int         `json:"bands"`
	Rates    [][]float64 `json:"rates"` // [band][column] requests per second
	Band     []int       `json:"band"`  // hash band (top 6 bits) of each row
}

// Report builds the report. The Analyzer may not be used afterwards.
func (a *Analyzer) Report() (*Report, error) {
	r := &Report{
		Inputs: a.inputs, Lines: a.lines, Records: a.records, Malformed: a.malformed,
		Comments: a.comments, OutOfRange: a.outOfRange, Bytes: a.bytesIn, Interval: a.cfg.Interval,
		KeySizes: a.keySizes.Dist(), ValueSizes: a.valSizes.Dist(), TTLs: a.ttls.Dist(), NoTTL: a.noTTL,
	}
	if a.records > 0 {
		r.Start, r.End = float64(a.first)/1e6, float64(a.last)/1e6
	}
	r.Sampling = Sampling{Mode: "fixed-rate", Rate: a.rate, Keys: len(a.keys), Records: a.sampled,
		SimRate: a.simRate, SimMaxKeys: a.cfg.SimKeys, SimRecords: a.simSampled}
	if a.fixedSize {
		r.Sampling.Mode, r.Sampling.MaxKeys, r.Sampling.Halvings = "fixed-size", a.cfg.MaxKeys, a.halvings
	}
	for name, c := range a.cmds {
		r.Commands = append(r.Commands, NameCount{name, c})
	}
	sortCounts(r.Commands)
	for i, c := range a.results {
		if c > 0 {
			r.Results = append(r.Results, NameCount{Result(i).String(), c})
		}
	}
	sortCounts(r.Results)
	var hits, misses uint64
	for i, w := range a.timeline {
		out := Window{Start: a.t0 + int64(i)*a.cfg.Interval, Reads: w.classes[ClassRead], Stores: w.classes[ClassStore],
			Deletes: w.classes[ClassDelete], Hits: w.hits, Misses: w.misses}
		for _, c := range w.classes {
			out.Requests += c
		}
		out.Other = out.Requests - out.Reads - out.Stores - out.Deletes
		if w.hits+w.misses > 0 {
			out.HitRatio = float64(w.hits) / float64(w.hits+w.misses)
		}
		hits += w.hits
		misses += w.misses
		r.Reads += out.Reads
		r.Timeline = append(r.Timeline, out)
	}
	if hits+misses > 0 {
		r.HitRatio = float64(hits) / float64(hits+misses)
	}
	for i, w := range a.wss {
		r.WSS = append(r.WSS, w.summary(wssWindows[i].name, a.rate))
	}
	r.MRC = MRC{Policy: a.cfg.Policy.String(), LRU: a.mrc.curve(float64(a.keyedReads))}
	if a.keyedReads > 0 {
		r.MRC.ColdMissRatio = min(1, a.mrc.cold/float64(a.keyedReads))
	}
	if a.sim != nil {
		if err := a.sim.close(); err != nil && a.err == nil {
			a.err = err
		}
		r.MRC.Petrel = a.sim.sim.curve(a.keyedReads)
		r.Sampling.SimTooLarge = a.sim.sim.tooLarge
		r.Sampling.SimSegmentSize = max(1024, int(float64(a.cfg.SegmentSize)*a.simRate)&^7)
	}
	for _, t := range []float64{0.90, 0.95, 0.99} {
		r.Targets = append(r.Targets, Target{HitRatio: t, LRUBytes: sizeFor(r.MRC.LRU, 1-t), PetrelBytes: sizeFor(r.MRC.Petrel, 1-t)})
	}
	r.TopKeys = a.top.top(a.cfg.TopKeys)
	r.Heatmap = a.heatmap(240)
	return r, a.err
}

func sortCounts(c []NameCount) {
	sort.Slice(c, func(i, j int) bool {
		if c[i].Count != c[j].Count {
			return c[i].Count > c[j].Count
		}
		return c[i].Name < c[j].Name
	})
}

// heatmap merges timeline columns so there are at most maxCols, and sorts
// the bands by total requests.
func (a *Analyzer) heatmap(maxCols int) Heatmap {
	per := (len(a.heat) + maxCols - 1) / max(1, maxCols)
	per = max(per, 1)
	ncol := (len(a.heat) + per - 1) / per
	hm := Heatmap{Start: a.t0, Interval: a.cfg.Interval * int64(per), Bands: heatBands}
	rates := make([][]float64, heatBands)
	totals := make([]float64, heatBands)
	for b := range rates {
		rates[b] = make([]float64, ncol)
		for i, col := range a.heat {
			v := float64(col[b]) / float64(hm.Interval)
			rates[b][i/per] += v
			totals[b] += v
		}
	}
	order := make([]int, heatBands)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return totals[order[i]] > totals[order[j]] })
	for _, b := range order {
		hm.Rates = append(hm.Rates, rates[b])
		hm.Band = append(hm.Band, b)
	}
	return hm
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("petrel analyze: %s\n", strings.Join(r.Inputs, " "))
	p("  %d lines: %d records, %d comments, %d malformed (skipped); %s of log\n", r.Lines, r.Records, r.Comments, r.Malformed, iec(float64(r.Bytes)))
	if r.Records > 0 {
		p("  %s to %s (%s)\n", stamp(r.Start), stamp(r.End), dur(r.End-r.Start))
	}
	if r.OutOfRange > 0 {
		p("  %d records dated too far from the first were left out of the timeline\n", r.OutOfRange)
	}
	s := r.Sampling
	p("  sampling: %s, rate %g (1 key in %.0f)", s.Mode, s.Rate, 1/s.Rate)
	if s.Mode == "fixed-size" {
		p(", at most %d keys, %d halvings", s.MaxKeys, s.Halvings)
	}
	p("; %d sampled records, %d sampled keys held\n", s.Records, s.Keys)
	if len(r.MRC.Petrel) > 0 {
		p("  Petrel simulation: nested sample at rate %g (at most %d keys), %d records\n", s.SimRate, s.SimMaxKeys, s.SimRecords)
	}
	p("\n")

	p("Request mix\n")
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
	for _, c := range r.Commands {
		fmt.Fprintf(tw, "  %s\t%d\t%.1f%%\t\n", c.Name, c.Count, pct(c.Count, r.Records))
	}
	tw.Flush()
	p("  results:")
	for _, c := range r.Results {
		p(" %s %d", c.Name, c.Count)
	}
	p("\n  hit ratio of reads (as logged): %.4f\n\n", r.HitRatio)

	p("Timeline (%s windows; %d of them)\n", dur(float64(r.Interval)), len(r.Timeline))
	tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  start\treq/s\treads\tstores\tdeletes\tother\thit ratio\t\n")
	step := max(1, (len(r.Timeline)+23)/24)
	for i := 0; i < len(r.Timeline); i += step {
		// Print at most 24 rows: merge windows.
		var m Window
		m.Start = r.Timeline[i].Start
		n := 0
		for j := i; j < min(i+step, len(r.Timeline)); j++ {
			t := r.Timeline[j]
			m.Requests += t.Requests
			m.Reads += t.Reads
			m.Stores += t.Stores
			m.Deletes += t.Deletes
			m.Other += t.Other
			m.Hits += t.Hits
			m.Misses += t.Misses
			n++
		}
		hr := "-"
		if m.Hits+m.Misses > 0 {
			hr = fmt.Sprintf("%.4f", float64(m.Hits)/float64(m.Hits+m.Misses))
		}
		fmt.Fprintf(tw, "  %s\t%.0f\t%d\t%d\t%d\t%d\t%s\t\n", stamp(float64(m.Start)), float64(m.Requests)/float64(int64(n)*r.Interval), m.Reads, m.Stores, m.Deletes, m.Other, hr)
	}
	tw.Flush()
	p("\n")

	p("Sizes\n")
	tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  \tcount\tmin\tmean\tp50\tp90\tp99\tp99.9\tmax\t\n")
	for _, d := range []struct {
		name string
		d    Dist
	}{{"key bytes", r.KeySizes}, {"value bytes", r.ValueSizes}, {"ttl seconds", r.TTLs}} {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t%d\t\n", d.name, d.d.Count, d.d.Min, d.d.Mean, d.d.P50, d.d.P90, d.d.P99, d.d.P999, d.d.Max)
	}
	tw.Flush()
	p("  (quantiles are bucket tops, within 12.5%%); %d stores without TTL", r.NoTTL)
	if r.TTLs.Negative > 0 {
		p(", %d with a TTL already past", r.TTLs.Negative)
	}
	p("\n\n")

	p("Working set (keys that exist and were referenced in the window; scaled from the sample)\n")
	tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  window\twindows\tmean keys\tp50 keys\tmax keys\tmean bytes\tp50 bytes\tmax bytes\t\n")
	for _, ws := range r.WSS {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", ws.Window, ws.Windows, si(ws.MeanKeys), si(ws.P50Keys), si(ws.MaxKeys), iec(ws.MeanBytes), iec(ws.P50Bytes), iec(ws.MaxBytes))
	}
	tw.Flush()
	p("\n")

	p("Miss-ratio curve (miss ratio of reads against cache bytes; Petrel policy %s simulated by internal/cache)\n", r.MRC.Policy)
	p("  cold misses (no cache size helps): %.4f\n", r.MRC.ColdMissRatio)
	tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  cache size\tLRU\tPetrel\t\n")
	for _, row := range mrcTable(r.MRC) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", row[0], row[1], row[2])
	}
	tw.Flush()
	p("\n  cache size needed for a hit ratio of (cold misses cap it at %.2f%%):\n", 100*(1-r.MRC.ColdMissRatio))
	for _, t := range r.Targets {
		p("    %.0f%%: LRU %s, Petrel %s\n", 100*t.HitRatio, sizeOrNever(t.LRUBytes), sizeOrNever(t.PetrelBytes))
	}
	if s.SimTooLarge > 0 {
		p("  note: %d simulated puts were refused as larger than a segment (the smallest caches have\n  segments of a quarter of their memory; the others of %d bytes)\n", s.SimTooLarge, s.SimSegmentSize)
	}
	p("\n")

	p("Hottest keys (Space-Saving; true count in [count-error, count])\n")
	tw = tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
	for i, k := range r.TopKeys {
		fmt.Fprintf(tw, "  %d\t%s\t%d\t±%d\t%.2f%%\t\n", i+1, k.Key, k.Count, k.Error, pct(k.Count, r.Records))
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}

// mrcTable lists both curves at the Petrel sizes (or every doubling of
// the LRU curve when there is no Petrel curve).
func mrcTable(m MRC) [][3]string {
	var sizes []int64
	if len(m.Petrel) > 0 {
		for _, p := range m.Petrel {
			sizes = append(sizes, p.Bytes)
		}
	} else if len(m.LRU) > 0 {
		for s := int64(1); s <= m.LRU[len(m.LRU)-1].Bytes*2; s *= 2 {
			if s >= m.LRU[0].Bytes/2 {
				sizes = append(sizes, s)
			}
		}
	}
	var rows [][3]string
	pi := 0
	for _, s := range sizes {
		lru := "-"
		if len(m.LRU) > 0 {
			lru = fmt.Sprintf("%.4f", missAt(m.LRU, s))
		}
		pet := "-"
		for pi < len(m.Petrel) && m.Petrel[pi].Bytes < s {
			pi++
		}
		if pi < len(m.Petrel) && m.Petrel[pi].Bytes == s {
			pet = fmt.Sprintf("%.4f", m.Petrel[pi].MissRatio)
		}
		rows = append(rows, [3]string{iec(float64(s)), lru, pet})
	}
	return rows
}

// missAt reads a step curve at size: the miss ratio of the largest point
// at or below it (1 below the first).
func missAt(pts []Point, size int64) float64 {
	mr := 1.0
	for _, p := range pts {
		if p.Bytes > size {
			break
		}
		mr = p.MissRatio
	}
	return mr
}

func sizeOrNever(b int64) string {
	if b == 0 {
		return "not reached"
	}
	return iec(float64(b))
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// iec formats bytes with binary prefixes.
func iec(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// si formats a count with decimal prefixes.
func si(v float64) string {
	units := []string{"", "k", "M", "G", "T"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f%s", v, units[i])
}
