package server

// Prometheus exposition. Counters are not kept twice: a custom collector
// reads the same per-worker registry and cache snapshot that `stats` prints,
// at scrape time, so the request path pays nothing for /metrics. Only the
// latency histogram is fed from the request path.
//
// Latency is measured per batch: from the moment the read that completed a
// batch of requests returned, to the moment the batch's replies were
// written. Every request of the batch is observed with that duration under
// its command family, so a pipelined request is charged for the whole batch
// it rode in, which is what its client waited for on the server's side.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"petrel/internal/stats"
)

// family labels a request for the latency histogram.
type family uint8

const (
	famGet family = iota
	famSet
	famDelete
	famArith
	famTouch
	famFlush
	famStats
	famOther
	numFamilies
)

var familyNames = [numFamilies]string{"get", "set", "delete", "arith", "touch", "flush", "stats", "other"}

// classify names the family of the request at the start of buf from its
// first word (text and meta) or opcode (binary). Meta commands join the
// family of their classic twin.
func classify(buf []byte) family {
	if len(buf) == 0 {
		return famOther
	}
	if buf[0] == 0x80 {
		if len(buf) < 2 {
			return famOther
		}
		switch buf[1] {
		case 0x00, 0x09, 0x0c, 0x0d:
			return famGet
		case 0x01, 0x02, 0x03, 0x0e, 0x0f, 0x11, 0x12, 0x13, 0x19, 0x1a:
			return famSet
		case 0x04, 0x14:
			return famDelete
		case 0x05, 0x06, 0x15, 0x16:
			return famArith
		case 0x1c, 0x1d, 0x1e, 0x23, 0x24:
			return famTouch
		case 0x08, 0x18:
			return famFlush
		case 0x10:
			return famStats
		}
		return famOther
	}
	var w [12]byte
	n := 0
	for n < len(buf) && n < len(w) && buf[n] != ' ' && buf[n] != '\r' && buf[n] != '\n' {
		w[n] = buf[n]
		n++
	}
	switch string(w[:n]) {
	case "get", "gets", "mg":
		return famGet
	case "set", "add", "replace", "append", "prepend", "cas", "ms":
		return famSet
	case "delete", "md":
		return famDelete
	case "incr", "decr", "ma":
		return famArith
	case "touch", "gat", "gats":
		return famTouch
	case "flush_all":
		return famFlush
	case "stats":
		return famStats
	}
	return famOther
}

// famCounts counts one batch's requests per family.
type famCounts [numFamilies]uint32

// observe records the batch's latency once per request and clears f.
func (f *famCounts) observe(m *metrics, start time.Time) {
	d := time.Since(start).Seconds()
	for i, n := range f {
		for ; n > 0; n-- {
			m.latency[i].Observe(d)
		}
		f[i] = 0
	}
}

// metrics is the server's Prometheus registry. Each server has its own, so
// tests can run several servers in one process.
type metrics struct {
	reg     *prometheus.Registry
	latency [numFamilies]prometheus.Observer
}

func newMetrics(srv *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "petrel_request_duration_seconds",
		Help: "Server-side latency per request, measured per batch from the read that completed it to the write of its replies.",
		// 10µs to about 1.3s.
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 18),
	}, []string{"cmd"})
	for i, name := range familyNames {
		m.latency[i] = hv.WithLabelValues(name)
	}
	m.reg.MustRegister(hv,
		&statsCollector{srv: srv},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// statsCollector turns a `stats` snapshot into metrics at scrape time.
type statsCollector struct{ srv *Server }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	counterDescs = func() (d [stats.NumCounters]*prometheus.Desc) {
		for c := stats.Counter(0); c < stats.NumCounters; c++ {
			d[c] = desc("petrel_"+c.Name()+"_total", "memcached `stats` "+c.Name()+" (not cleared by stats reset).")
		}
		return d
	}()
	descUptime       = desc("petrel_uptime_seconds", "Seconds since the server started.")
	descConnsCurr    = desc("petrel_curr_connections", "Client connections open now.")
	descConnsMax     = desc("petrel_connections_max", "The -c limit on client connections.")
	descConnsTotal   = desc("petrel_connections_total", "Client connections accepted (cleared by stats reset).")
	descConnsRej     = desc("petrel_connections_rejected_total", "Connections refused because -c was reached (cleared by stats reset).")
	descConnStructs  = desc("petrel_connection_structures", "Most client connections open at once.")
	descIdleKicks    = desc("petrel_idle_kicks_total", "Connections closed by the idle timeout (cleared by stats reset).")
	descItems        = desc("petrel_items", "Live items.")
	descItemsTotal   = desc("petrel_items_stored_total", "Items ever stored.")
	descBytes        = desc("petrel_item_bytes", "Bytes of live items.")
	descLimit        = desc("petrel_limit_maxbytes", "Item memory limit (-m) in bytes.")
	descEvictions    = desc("petrel_evictions_total", "Live items evicted to make room.")
	descReclaimed    = desc("petrel_reclaimed_total", "Expired items whose memory was reused.")
	descExpUnfetched = desc("petrel_expired_unfetched_total", "Items expired without ever being fetched.")
	descEvUnfetched  = desc("petrel_evicted_unfetched_total", "Items evicted without ever being fetched.")
	descOOM          = desc("petrel_out_of_memory_total", "Stores refused for lack of memory.")
	descReinserted   = desc("petrel_reinserted_total", "Items copied forward by eviction.")
	descSegSize      = desc("petrel_segment_size_bytes", "Bytes per segment.")
	descSegCap       = desc("petrel_segments_capacity", "Segments the memory limit allows.")
	descSegs         = desc("petrel_segments", "Segments by state.", "state")
	descSegDead      = desc("petrel_segment_dead_bytes", "Bytes in sealed segments whose items are gone.")
	descSegEvicted   = desc("petrel_segments_evicted_total", "Segments evicted.")
	descSegExpired   = desc("petrel_segments_expired_total", "Segments freed whole because every item expired.")
	descIndexSlots   = desc("petrel_index_slots", "Slots in the hash index.")
	descIndexBytes   = desc("petrel_index_bytes", "Memory of the hash index.")
)

func (sc *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(sc, ch)
}

func (sc *statsCollector) Collect(ch chan<- prometheus.Metric) {
	srv := sc.srv
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	for c, v := range srv.reg.Totals() {
		counter(counterDescs[c], v)
	}
	gauge(descUptime, time.Since(srv.start).Seconds())
	gauge(descConnsCurr, float64(srv.currConns.Load()))
	gauge(descConnsMax, float64(srv.cfg.MaxConns))
	counter(descConnsTotal, srv.totalConns.Load())
	counter(descConnsRej, srv.rejected.Load())
	gauge(descConnStructs, float64(srv.connStructs.Load()))
	counter(descIdleKicks, srv.idleKicks.Load())

	cs := srv.cache.Stats()
	gauge(descItems, float64(cs.CurrItems))
	counter(descItemsTotal, cs.TotalItems)
	gauge(descBytes, float64(cs.Bytes))
	gauge(descLimit, float64(cs.LimitBytes))
	counter(descEvictions, cs.Evictions)
	counter(descReclaimed, cs.Reclaimed)
	counter(descExpUnfetched, cs.ExpiredUnfetched)
	counter(descEvUnfetched, cs.EvictedUnfetched)
	counter(descOOM, cs.OutOfMemory)
	counter(descReinserted, cs.Reinserted)
	gauge(descSegSize, float64(cs.SegmentSize))
	gauge(descSegCap, float64(cs.SegmentsTotal))
	gauge(descSegs, float64(cs.SegmentsFree), "free")
	gauge(descSegs, float64(cs.SegmentsOpen), "open")
	gauge(descSegs, float64(cs.SegmentsSealed), "sealed")
	gauge(descSegDead, float64(cs.SegmentBytesDead))
	counter(descSegEvicted, cs.SegmentsEvicted)
	counter(descSegExpired, cs.SegmentsExpired)
	gauge(descIndexSlots, float64(cs.IndexSlots))
	gauge(descIndexBytes, float64(cs.IndexBytes))
}
