package server

// The status page: the admin listener's `/`, a small server-rendered HTML
// page (html/template, no JavaScript) that reloads itself every few
// seconds, and the same figures as /status.json. Rates are differences of
// the monotonic counters between two looks a second or more apart, as
// `memcached-tool display` and Twemcache's stats aggregator compute them.

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"petrel/internal/stats"
)

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"bytes": humanBytes,
	"pct":   func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) },
}).Parse(statusHTML))

// statusRoutes adds the page and its companions to the admin mux.
func (srv *Server) statusRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/{$}", srv.handleStatus)
	mux.HandleFunc("/status.json", srv.handleStatusJSON)
	mux.HandleFunc("/cmdlog", srv.handleCmdlog)
	mux.HandleFunc("/analysis/{file}", srv.handleAnalysis)
}

// statusData is everything the page shows; /status.json is its encoding.
type statusData struct {
	Version       string  `json:"version"`
	Time          string  `json:"time"`
	UptimeSeconds int64   `json:"uptime_seconds"`
	Refresh       int     `json:"-"`
	OpsPerSec     float64 `json:"ops_per_sec"`
	RateWindow    float64 `json:"rate_window_seconds"` // 0: the rates are averages since start
	Ops           uint64  `json:"ops"`
	GetHits       uint64  `json:"get_hits"`
	GetMisses     uint64  `json:"get_misses"`
	HitRatio      float64 `json:"hit_ratio"`        // since start; -1 before the first get
	HitRatioNow   float64 `json:"hit_ratio_recent"` // over the rate window; -1 without gets in it

	CurrItems  uint64         `json:"curr_items"`
	ItemBytes  uint64         `json:"item_bytes"`
	LimitBytes uint64         `json:"limit_maxbytes"`
	Segments   []segmentState `json:"segments"`
	DeadBytes  uint64         `json:"segment_bytes_dead"`
	Evictions  uint64         `json:"evictions"`
	Reclaimed  uint64         `json:"reclaimed"`
	OOM        uint64         `json:"out_of_memory"`

	CurrConns  int64  `json:"curr_connections"`
	TotalConns uint64 `json:"total_connections"`
	MaxConns   int    `json:"max_connections"`

	Durability string      `json:"durability"` // "off" or the mode
	Journal    []statField `json:"journal"`    // journal_*, storer_*, warmup_* fields of `stats`
	// Lags, when the server has a journal (and a storer): records appended
	// but not yet durable, and records durable but not yet in storage.
	JournalLag    string `json:"journal_lag_records,omitempty"`
	StorerLag     string `json:"storer_backlog_records,omitempty"`
	StorerLagTime string `json:"storer_oldest_unapplied_ms,omitempty"`

	Cmdlog cmdlogStatus `json:"cmdlog"`

	MRC      string   `json:"mrc,omitempty"` // URL of the last analysis's miss-ratio curve
	MRCTime  string   `json:"mrc_time,omitempty"`
	Analysis []string `json:"analysis,omitempty"` // other pictures of that analysis
}

type segmentState struct {
	State string  `json:"state"`
	Count uint64  `json:"count"`
	Bytes uint64  `json:"bytes"`
	Share float64 `json:"share"` // of all segments
}

type statField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// rateSample is one look at the counters.
type rateSample struct {
	at              time.Time
	ops, hits, miss uint64
}

// statusRates keeps recent looks so that any viewer gets a rate over at
// least a second, however often pages are loaded.
type statusRates struct {
	mu      sync.Mutex
	samples []rateSample // oldest first, at least a second apart, up to a minute old
}

// opsOf sums the counters that count requests, each request once.
func opsOf(c [stats.NumCounters]uint64) uint64 {
	return c[stats.CmdGet] + c[stats.CmdSet] + c[stats.CmdTouch] + c[stats.CmdFlush] +
		c[stats.DeleteHits] + c[stats.DeleteMisses] + c[stats.IncrHits] + c[stats.IncrMisses] +
		c[stats.DecrHits] + c[stats.DecrMisses]
}

// observe records a look and returns the sample to compare it with: the
// newest one at least a second old, or false if there is none yet.
func (r *statusRates) observe(cur rateSample) (rateSample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var base rateSample
	ok := false
	for _, s := range r.samples {
		if cur.at.Sub(s.at) >= time.Second {
			base, ok = s, true
		}
	}
	if n := len(r.samples); n == 0 || cur.at.Sub(r.samples[n-1].at) >= time.Second {
		r.samples = append(r.samples, cur)
	}
	for len(r.samples) > 1 && cur.at.Sub(r.samples[0].at) > time.Minute {
		r.samples = r.samples[1:]
	}
	return base, ok
}

func ratio(hits, misses uint64) float64 {
	if hits+misses == 0 {
		return -1
	}
	return float64(hits) / float64(hits+misses)
}

// statusData gathers the page's figures.
func (srv *Server) statusData() statusData {
	now := time.Now()
	c := srv.reg.Totals()
	cur := rateSample{at: now, ops: opsOf(c), hits: c[stats.GetHits], miss: c[stats.GetMisses]}
	d := statusData{
		Version:       Version,
		Time:          now.UTC().Format(time.RFC3339),
		UptimeSeconds: int64(now.Sub(srv.start) / time.Second),
		Ops:           cur.ops,
		GetHits:       cur.hits,
		GetMisses:     cur.miss,
		HitRatio:      ratio(cur.hits, cur.miss),
		CurrConns:     srv.currConns.Load(),
		TotalConns:    srv.totalConns.Load(),
		MaxConns:      srv.cfg.MaxConns,
		Durability:    "off",
		Cmdlog:        srv.cmdlogStatus(),
	}
	if base, ok := srv.status.observe(cur); ok {
		dt := now.Sub(base.at).Seconds()
		d.RateWindow = dt
		d.OpsPerSec = float64(cur.ops-base.ops) / dt
		d.HitRatioNow = ratio(cur.hits-base.hits, cur.miss-base.miss)
	} else {
		d.OpsPerSec = float64(cur.ops) / max(now.Sub(srv.start).Seconds(), 1e-3)
		d.HitRatioNow = d.HitRatio
	}

	cs := srv.cache.Stats()
	d.CurrItems, d.ItemBytes, d.LimitBytes = cs.CurrItems, cs.Bytes, cs.LimitBytes
	d.DeadBytes, d.Evictions, d.Reclaimed, d.OOM = cs.SegmentBytesDead, cs.Evictions, cs.Reclaimed, cs.OutOfMemory
	total := max(cs.SegmentsFree+cs.SegmentsOpen+cs.SegmentsSealed, 1)
	for _, s := range []struct {
		name string
		n    uint64
	}{{"open", cs.SegmentsOpen}, {"sealed", cs.SegmentsSealed}, {"free", cs.SegmentsFree}} {
		d.Segments = append(d.Segments, segmentState{s.name, s.n, s.n * cs.SegmentSize, float64(s.n) / float64(total)})
	}

	// Durability figures come from `stats`, whatever the journal and the
	// storer add there; without a journal the page says so.
	srv.generalStats(func(name, value string) {
		switch {
		case name == "durability":
			d.Durability = value
		case strings.HasPrefix(name, "journal_"), strings.HasPrefix(name, "storer_"),
			strings.HasPrefix(name, "warmup_"):
			d.Journal = append(d.Journal, statField{name, value})
		}
	})
	if d.Durability == "off" {
		d.Journal = nil
	}
	d.lags()
	srv.analysisFiles(&d)
	return d
}

// lags derives the page's headline lags from the journal's fields.
func (d *statusData) lags() {
	f := map[string]string{}
	for _, j := range d.Journal {
		f[j.Name] = j.Value
	}
	last, err1 := strconv.ParseUint(f["journal_last_seq"], 10, 64)
	durable, err2 := strconv.ParseUint(f["journal_durable_seq"], 10, 64)
	if err1 == nil && err2 == nil && last >= durable {
		d.JournalLag = strconv.FormatUint(last-durable, 10)
	}
	d.StorerLag = f["storer_backlog_records"]
	d.StorerLagTime = f["storer_oldest_unapplied_ms"]
}

var analysisName = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.svg$`)

// analysisFiles finds the pictures of the last `petrel analyze --out DIR`.
func (srv *Server) analysisFiles(d *statusData) {
	dir := srv.cfg.AnalysisDir
	if dir == "" {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !analysisName.MatchString(name) {
			continue
		}
		if name == "mrc.svg" {
			d.MRC = "/analysis/mrc.svg"
			if fi, err := e.Info(); err == nil {
				d.MRCTime = fi.ModTime().UTC().Format(time.RFC3339)
			}
			continue
		}
		d.Analysis = append(d.Analysis, "/analysis/"+name)
	}
}

func (srv *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	d := srv.statusData()
	d.Refresh = 5
	if v, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && v >= 0 {
		d.Refresh = v
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	if err := statusTmpl.Execute(w, d); err != nil {
		srv.logf(1, "status page: %v", err)
	}
}

func (srv *Server) handleStatusJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(srv.statusData())
}

// handleAnalysis serves an SVG of the analysis directory. SVG can carry
// script, so it is served under a policy that runs none.
func (srv *Server) handleAnalysis(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if srv.cfg.AnalysisDir == "" || !analysisName.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	b, err := os.ReadFile(filepath.Join(srv.cfg.AnalysisDir, name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(b)
}

// humanBytes prints a byte count in binary units.
func humanBytes(v uint64) string {
	const unit = 1024
	if v < unit {
		return fmt.Sprintf("%d B", v)
	}
	div, exp := uint64(unit), 0
	for n := v / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(v)/float64(div), "KMGTPE"[exp])
}
