package server

// The storage backend's use in `stats` and /metrics: the backend and mode,
// retries by error kind, back-pressure, and read-through counters. The
// storer's backlog (records, bytes, age of the oldest unapplied write) is
// in durable_stats.go. docs/metrics.md lists them.

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// initBackendUse sets up read-through and the metrics once the backend is
// open (openDurable).
func (srv *Server) initBackendUse(d *durable, b *backing) {
	bc := d.cfg.Backend
	if bc.ReadThrough && b.store != nil { // openBacking refuses it beside an external storer
		d.rt = newReadThrough(srv, d, b.store)
	}
	srv.metrics.reg.MustRegister(&backendCollector{srv: srv})
}

// backendStats appends the backend's fields to the general `stats`.
func (srv *Server) backendStats(emit func(name, value string)) {
	d := srv.dur
	bc := d.cfg.Backend
	emit("backend", bc.kind())
	emit("backend_mode", orDefault(bc.Mode, ModeWriteBehind))
	emit("backend_backlog_full", boolDigit(d.backlogFull.Load()))
	if st := d.storer(); st != nil {
		l := st.Lag()
		kinds := make([]string, 0, len(l.Stats.Retries))
		for k := range l.Stats.Retries {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			emit("storer_retries_"+k, u64(l.Stats.Retries[k]))
		}
	}
	if rt := d.rt; rt != nil {
		emit("read_through_reads", u64(rt.st.reads.Load()))
		emit("read_through_hits", u64(rt.st.hits.Load()))
		emit("read_through_misses", u64(rt.st.misses.Load()))
		emit("read_through_errors", u64(rt.st.errors.Load()))
		emit("read_through_shared", u64(rt.st.shared.Load()))
		emit("read_through_negative_hits", u64(rt.st.negHits.Load()))
		emit("read_through_discards", u64(rt.st.discards.Load()))
	}
}

var (
	descBackFull = desc("petrel_backend_backlog_full", "1 while mutations are refused because the backend lags past --backlog-limit.")
	descRT       = prometheus.NewDesc("petrel_read_through_total", "Read-through outcomes: read (backend reads), hit, miss, error, shared (waited for another read), negative_hit, discard (written meanwhile, not cached).", []string{"result"}, nil)
)

// backendCollector exports the backend's use at scrape time.
type backendCollector struct{ srv *Server }

func (bc *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(bc, ch)
}

func (bc *backendCollector) Collect(ch chan<- prometheus.Metric) {
	d := bc.srv.dur
	if d == nil {
		return
	}
	full := 0.0
	if d.backlogFull.Load() {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(descBackFull, prometheus.GaugeValue, full)
	rt := d.rt
	if rt == nil {
		return
	}
	for _, c := range []struct {
		name string
		v    uint64
	}{
		{"read", rt.st.reads.Load()}, {"hit", rt.st.hits.Load()}, {"miss", rt.st.misses.Load()},
		{"error", rt.st.errors.Load()}, {"shared", rt.st.shared.Load()},
		{"negative_hit", rt.st.negHits.Load()}, {"discard", rt.st.discards.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(descRT, prometheus.CounterValue, float64(c.v), c.name)
	}
}
