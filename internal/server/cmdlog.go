package server

// The command logger's place in the server: its settings, turning it on and
// off while the server runs (the `cmdlog` text command, POST /cmdlog on the
// admin listener), and its metrics. The logger itself is internal/cmdlog;
// cmdlog_capture.go turns requests into its records.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"petrel/internal/cmdlog"
	"petrel/internal/protocol"
)

// CmdlogConfig is the command logger's part of Config (--cmdlog-*).
type CmdlogConfig struct {
	Path     string // --cmdlog: file, udp://host:port or tcp://host:port; empty: no log configured
	Sample   int    // --cmdlog-sample: log 1 request in N per connection (default 1: all)
	MaxSize  int64  // --cmdlog-max-size: rotate the file past this many bytes; 0 never
	Keep     int    // --cmdlog-keep: rotated files kept, PATH.1 .. PATH.K (default 4)
	HashKeys bool   // --cmdlog-hash-keys: log FNV-1a 64 hashes instead of keys
	// Paused configures the path without logging from the start; `cmdlog on`
	// or POST /cmdlog?enable=1 starts it.
	Paused bool
}

// DefaultCmdlogConfig is the logger's defaults: off, all requests once on.
func DefaultCmdlogConfig() CmdlogConfig { return CmdlogConfig{Sample: 1, Keep: 4} }

func (c *CmdlogConfig) validate() error {
	switch {
	case c.Sample < 0:
		return fmt.Errorf("cmdlog sample must not be negative, got %d", c.Sample)
	case c.MaxSize < 0:
		return fmt.Errorf("cmdlog max size must not be negative, got %d", c.MaxSize)
	case c.Keep < 0:
		return fmt.Errorf("cmdlog keep must not be negative, got %d", c.Keep)
	}
	return nil
}

// cmdlogHub holds the running logger, if any. The request path only loads
// cur; everything else is under mu.
type cmdlogHub struct {
	cur  atomic.Pointer[cmdlog.Logger]
	mu   sync.Mutex
	cfg  CmdlogConfig // the settings the next `cmdlog on` uses
	past cmdlog.Stats // counters of loggers already closed, so metrics only grow
}

// initCmdlog registers the logger's metrics and starts it when configured.
func (srv *Server) initCmdlog() error {
	h := &srv.clog
	h.cfg = srv.cfg.Cmdlog
	if err := h.cfg.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	srv.metrics.reg.MustRegister(&cmdlogCollector{srv: srv})
	if h.cfg.Path != "" && !h.cfg.Paused {
		return srv.enableCmdlog("", -1)
	}
	return nil
}

// enableCmdlog starts (or restarts) the logger. An empty path or a negative
// sample keeps the configured one.
func (srv *Server) enableCmdlog(path string, sample int) error {
	h := &srv.clog
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg := h.cfg
	if path != "" {
		cfg.Path = path
	}
	if sample >= 0 {
		cfg.Sample = sample
	}
	if cfg.Path == "" {
		return errors.New("no command log path configured (--cmdlog)")
	}
	l, err := cmdlog.Open(cmdlog.Options{
		Dest: cfg.Path, Sample: cfg.Sample, MaxSize: cfg.MaxSize, Keep: cfg.Keep, HashKeys: cfg.HashKeys,
	})
	if err != nil {
		return err
	}
	h.cfg = cfg
	srv.closeLoggerLocked(h.cur.Swap(l))
	srv.logf(1, "command log on: %s, 1 in %d", cfg.Path, l.Sample())
	return nil
}

// disableCmdlog stops the logger, writing out what its rings hold.
func (srv *Server) disableCmdlog() {
	h := &srv.clog
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.cur.Swap(nil); old != nil {
		srv.closeLoggerLocked(old)
		srv.logf(1, "command log off")
	}
}

// closeLoggerLocked closes l (if not nil) and keeps its counters.
func (srv *Server) closeLoggerLocked(l *cmdlog.Logger) {
	if l == nil {
		return
	}
	if err := l.Close(); err != nil {
		srv.logf(0, "command log: %v", err)
	}
	st := l.Stats()
	p := &srv.clog.past
	p.Lines += st.Lines
	p.Drops += st.Drops
	p.Lost += st.Lost
	p.Bytes += st.Bytes
	p.Rotations += st.Rotations
}

// cmdlogStatus is the logger's state for `cmdlog`, /cmdlog and the status
// page. Counters are since the server started, across restarts of the logger.
type cmdlogStatus struct {
	Enabled   bool   `json:"enabled"`
	Path      string `json:"path"`
	Sample    int    `json:"sample"`
	HashKeys  bool   `json:"hash_keys"`
	Lines     uint64 `json:"lines"`
	Drops     uint64 `json:"drops"`
	Lost      uint64 `json:"lost"`
	Bytes     uint64 `json:"bytes"`
	Rotations uint64 `json:"rotations"`
	Conns     int    `json:"conns"`
	LastError string `json:"last_error,omitempty"`
}

func (srv *Server) cmdlogStatus() cmdlogStatus {
	h := &srv.clog
	h.mu.Lock()
	defer h.mu.Unlock()
	st := cmdlogStatus{
		Path: h.cfg.Path, Sample: max(h.cfg.Sample, 1), HashKeys: h.cfg.HashKeys,
		Lines: h.past.Lines, Drops: h.past.Drops, Lost: h.past.Lost,
		Bytes: h.past.Bytes, Rotations: h.past.Rotations,
	}
	if l := h.cur.Load(); l != nil {
		ls := l.Stats()
		st.Enabled = true
		st.Lines += ls.Lines
		st.Drops += ls.Drops
		st.Lost += ls.Lost
		st.Bytes += ls.Bytes
		st.Rotations += ls.Rotations
		st.Conns = ls.Rings
		st.LastError = ls.LastError
	}
	return st
}

// closeCmdlog stops the logger at shutdown, after the connections.
func (srv *Server) closeCmdlog() { srv.disableCmdlog() }

// cmdlogCommand answers Petrel's `cmdlog` text command, an extension that
// memcached answers with ERROR:
//
//	cmdlog             STAT lines with the logger's state, then END
//	cmdlog on [N]      start logging 1 request in N (default: the configured
//	                   rate) to the configured --cmdlog destination: OK
//	cmdlog off         stop: OK
//
// It cannot choose the destination: a cache port reachable by clients must
// not let them write files. The admin endpoint can. It reports false when
// line is not a cmdlog command, so the caller answers ERROR as memcached.
func (s *session) cmdlogCommand(line []byte) bool {
	f := bytes.Fields(line)
	if len(f) == 0 || string(f[0]) != "cmdlog" {
		return false
	}
	srv := s.srv
	reply := func(l string) { s.out = protocol.AppendLine(s.out, l) }
	switch {
	case len(f) == 1:
		st := srv.cmdlogStatus()
		srv.cmdlogPairs(st, func(k, v string) { reply("STAT " + k + " " + v) })
		reply("END")
	case string(f[1]) == "off" && len(f) == 2:
		srv.disableCmdlog()
		reply("OK")
	case string(f[1]) == "on" && len(f) <= 3:
		sample := -1
		if len(f) == 3 {
			n, err := strconv.Atoi(string(f[2]))
			if err != nil || n < 1 {
				reply("CLIENT_ERROR bad sample rate")
				return true
			}
			sample = n
		}
		if err := srv.enableCmdlog("", sample); err != nil {
			reply("SERVER_ERROR " + oneLine(err.Error()))
			return true
		}
		reply("OK")
	default:
		reply("CLIENT_ERROR usage: cmdlog [on [SAMPLE]|off]")
	}
	return true
}

// oneLine keeps an error message from breaking the reply framing.
func oneLine(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, []byte(s)))
}

func flag01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// cmdlogPairs lists the logger's state as `cmdlog` prints it.
func (srv *Server) cmdlogPairs(st cmdlogStatus, emit func(k, v string)) {
	emit("cmdlog_enabled", flag01(st.Enabled))
	path := st.Path
	if path == "" {
		path = "-"
	}
	emit("cmdlog_path", oneLine(path))
	emit("cmdlog_sample", strconv.Itoa(st.Sample))
	emit("cmdlog_hash_keys", flag01(st.HashKeys))
	emit("cmdlog_lines", u64(st.Lines))
	emit("cmdlog_drops", u64(st.Drops))
	emit("cmdlog_lost", u64(st.Lost))
	emit("cmdlog_bytes", u64(st.Bytes))
	emit("cmdlog_rotations", u64(st.Rotations))
	emit("cmdlog_conns", strconv.Itoa(st.Conns))
}

// handleCmdlog is the admin endpoint: GET /cmdlog reports the state as
// JSON; POST /cmdlog?enable=1[&path=DEST][&sample=N] starts the logger
// (restarting it with the new settings if it runs), POST /cmdlog?enable=0
// stops it.
func (srv *Server) handleCmdlog(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		q := r.URL.Query()
		switch q.Get("enable") {
		case "1", "true", "on":
			sample := -1
			if v := q.Get("sample"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					http.Error(w, "sample: want a positive integer", http.StatusBadRequest)
					return
				}
				sample = n
			}
			if err := srv.enableCmdlog(q.Get("path"), sample); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		case "0", "false", "off":
			srv.disableCmdlog()
		default:
			http.Error(w, "enable: want 1 or 0", http.StatusBadRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(srv.cmdlogStatus())
}

var (
	descClogOn    = desc("petrel_cmdlog_enabled", "1 while the command logger is on.")
	descClogRate  = desc("petrel_cmdlog_sample", "The command logger logs 1 request in this many per connection.")
	descClogLines = desc("petrel_cmdlog_lines_total", "Command log lines written.")
	descClogDrops = desc("petrel_cmdlog_dropped_total", "Command log records dropped because a connection's ring was full (the writer fell behind).")
	descClogLost  = desc("petrel_cmdlog_lost_total", "Command log lines the destination failed to take (write errors, no collector).")
	descClogBytes = desc("petrel_cmdlog_written_bytes_total", "Bytes written to the command log.")
	descClogRot   = desc("petrel_cmdlog_rotations_total", "Command log file rotations.")
)

// cmdlogCollector exports the logger at scrape time.
type cmdlogCollector struct{ srv *Server }

func (cc *cmdlogCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(cc, ch)
}

func (cc *cmdlogCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.srv.cmdlogStatus()
	g := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	c := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	on := 0.0
	if st.Enabled {
		on = 1
	}
	g(descClogOn, on)
	g(descClogRate, float64(st.Sample))
	c(descClogLines, st.Lines)
	c(descClogDrops, st.Drops)
	c(descClogLost, st.Lost)
	c(descClogBytes, st.Bytes)
	c(descClogRot, st.Rotations)
}
