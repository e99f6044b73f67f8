package server

// The `stats` command's sections, in memcached 1.6.18's field order for the
// fields Petrel can back; fields with nothing behind them (libevent, slab
// mover, LRU crawler, extstore, TLS) are left out rather than faked.
// Petrel's own fields follow memcached's. Petrel has segments, not slab
// classes, so `stats items` and `stats slabs` describe one class (id 1)
// whose "pages" are segments, in the shape tools that parse memcached
// expect; docs/metrics.md says what each field means here.

import (
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	"petrel/internal/cache"
	"petrel/internal/stats"
)

// statsPairs emits the name/value pairs of `stats <section>` ("" is the
// general set; "settings", "items", "slabs", "conns"). It returns false for
// an unknown section. `stats reset` is handled by resetStats.
func (s *session) statsPairs(section string, emit func(name, value string)) bool {
	srv := s.srv
	switch section {
	case "":
		srv.generalStats(emit)
	case "settings":
		srv.settingsStats(emit)
	case "items":
		srv.itemsStats(emit)
	case "slabs":
		srv.slabsStats(emit)
	case "conns":
		srv.connsStats(emit)
	default:
		return false
	}
	return true
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func i64(v int64) string  { return strconv.FormatInt(v, 10) }

func rusage() (user, sys string) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "0.000000", "0.000000"
	}
	tv := func(t syscall.Timeval) string {
		us := strconv.FormatInt(int64(t.Usec), 10)
		for len(us) < 6 {
			us = "0" + us
		}
		return strconv.FormatInt(int64(t.Sec), 10) + "." + us
	}
	return tv(ru.Utime), tv(ru.Stime)
}

// threads is what `stats` reports for -t: the Go scheduler's processors.
func (srv *Server) threads() int {
	if srv.cfg.Threads > 0 {
		return srv.cfg.Threads
	}
	return runtime.GOMAXPROCS(0)
}

func (srv *Server) generalStats(emit func(name, value string)) {
	now := time.Now()
	c := srv.reg.Snapshot()
	cs := srv.cache.Stats()
	user, sys := rusage()
	accepting := "1"
	if srv.closing.Load() {
		accepting = "0"
	}
	emit("pid", strconv.Itoa(os.Getpid()))
	emit("uptime", i64(int64(now.Sub(srv.start)/time.Second)))
	emit("time", i64(now.Unix()))
	emit("version", Version)
	emit("pointer_size", strconv.Itoa(strconv.IntSize))
	emit("rusage_user", user)
	emit("rusage_system", sys)
	emit("max_connections", strconv.Itoa(srv.cfg.MaxConns))
	emit("curr_connections", i64(srv.currConns.Load()))
	emit("total_connections", u64(srv.totalConns.Load()))
	emit("rejected_connections", u64(srv.rejected.Load()))
	emit("connection_structures", i64(srv.connStructs.Load()))
	for _, k := range []stats.Counter{
		stats.CmdGet, stats.CmdSet, stats.CmdFlush, stats.CmdTouch, stats.CmdMeta,
		stats.GetHits, stats.GetMisses, stats.GetExpired, stats.GetFlushed,
		stats.DeleteMisses, stats.DeleteHits, stats.IncrMisses, stats.IncrHits,
		stats.DecrMisses, stats.DecrHits, stats.CasMisses, stats.CasHits, stats.CasBadval,
		stats.TouchHits, stats.TouchMisses, stats.StoreTooLarge, stats.StoreNoMemory,
		stats.BytesRead, stats.BytesWritten,
	} {
		emit(k.Name(), u64(c[k]))
	}
	emit("limit_maxbytes", u64(cs.LimitBytes))
	emit("accepting_conns", accepting)
	emit("threads", strconv.Itoa(srv.threads()))
	emit("hash_bytes", u64(cs.IndexBytes))
	emit("bytes", u64(cs.Bytes))
	emit("curr_items", u64(cs.CurrItems))
	emit("total_items", u64(cs.TotalItems))
	emit("expired_unfetched", u64(cs.ExpiredUnfetched))
	emit("evicted_unfetched", u64(cs.EvictedUnfetched))
	emit("evictions", u64(cs.Evictions))
	emit("reclaimed", u64(cs.Reclaimed))
	// Petrel's own, after memcached's.
	emit("protocol_errors", u64(c[stats.ProtocolErrors]))
	emit("idle_kicks", u64(srv.idleKicks.Load()))
	emit("out_of_memory", u64(cs.OutOfMemory))
	emit("reinserted", u64(cs.Reinserted))
	emit("segment_size", u64(cs.SegmentSize))
	emit("segments_total", u64(cs.SegmentsTotal))
	emit("segments_free", u64(cs.SegmentsFree))
	emit("segments_open", u64(cs.SegmentsOpen))
	emit("segments_sealed", u64(cs.SegmentsSealed))
	emit("segment_bytes_dead", u64(cs.SegmentBytesDead))
	emit("segments_evicted", u64(cs.SegmentsEvicted))
	emit("segments_expired", u64(cs.SegmentsExpired))
	emit("hash_slots", u64(cs.IndexSlots))
	srv.durableStats(emit) // Petrel-only fields, after memcached's (durable_stats.go)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (srv *Server) settingsStats(emit func(name, value string)) {
	cfg := srv.cfg
	inter, sock := "NULL", "NULL"
	if cfg.Listen != "" {
		inter = cfg.Listen
	}
	if cfg.UnixSocket != "" {
		sock = cfg.UnixSocket
	}
	evictions := "on"
	if cfg.NoEvict || cfg.Eviction == cache.EvictNone {
		evictions = "off"
	}
	proto := cfg.Protocol
	if proto == "auto" {
		proto = "auto-negotiate"
	}
	idle := int64(cfg.IdleTimeout / time.Second)
	th := strconv.Itoa(srv.threads())
	emit("maxbytes", i64(cfg.MemoryMB<<20))
	emit("maxconns", strconv.Itoa(cfg.MaxConns))
	emit("tcpport", strconv.Itoa(cfg.Port))
	emit("udpport", strconv.Itoa(cfg.UDPPort))
	emit("inter", inter)
	emit("verbosity", strconv.Itoa(int(srv.verbose.Load())))
	emit("oldest", "0")
	emit("evictions", evictions)
	emit("domain_socket", sock)
	emit("umask", strconv.FormatUint(uint64(cfg.UnixMask), 8))
	emit("shutdown_command", yesNo(cfg.EnableShutdown))
	emit("growth_factor", "1.25")
	emit("chunk_size", "48")
	emit("num_threads", th)
	emit("num_threads_per_udp", th)
	emit("stat_key_prefix", ":")
	emit("detail_enabled", "no")
	emit("reqs_per_event", strconv.Itoa(cfg.ReqsPerEvent))
	emit("cas_enabled", yesNo(!cfg.NoCAS))
	emit("tcp_backlog", strconv.Itoa(cfg.Backlog))
	emit("binding_protocol", proto)
	emit("auth_enabled_sasl", "no")
	emit("auth_enabled_ascii", "no")
	emit("item_size_max", strconv.Itoa(cfg.MaxItemSize))
	emit("maxconns_fast", "yes")
	emit("hashpower_init", "0")
	emit("slab_reassign", "no")
	emit("slab_automove", "0")
	emit("lru_crawler", "no")
	emit("flush_enabled", "yes")
	emit("idle_timeout", i64(idle))
	// Petrel's own.
	emit("eviction_policy", cfg.Eviction.String())
	emit("segment_size", u64(srv.cache.Stats().SegmentSize))
	emit("admin_addr", cfg.AdminAddr)
	srv.durableSettings(emit) // durable_stats.go
}

func (srv *Server) itemsStats(emit func(name, value string)) {
	cs := srv.cache.Stats()
	if cs.CurrItems == 0 {
		return // memcached prints no class that holds nothing
	}
	f := func(name string, v uint64) { emit("items:1:"+name, u64(v)) }
	f("number", cs.CurrItems)
	f("number_hot", 0)
	f("number_warm", 0)
	f("number_cold", cs.CurrItems)
	f("age_hot", 0)
	f("age_warm", 0)
	f("age", 0)
	f("mem_requested", cs.Bytes)
	f("evicted", cs.Evictions)
	f("evicted_nonzero", 0)
	f("evicted_time", 0)
	f("outofmemory", cs.OutOfMemory)
	f("tailrepairs", 0)
	f("reclaimed", cs.Reclaimed)
	f("expired_unfetched", cs.ExpiredUnfetched)
	f("evicted_unfetched", cs.EvictedUnfetched)
	// Twemcache-like segment view.
	f("reinserted", cs.Reinserted)
	f("segments_open", cs.SegmentsOpen)
	f("segments_sealed", cs.SegmentsSealed)
	f("segments_free", cs.SegmentsFree)
	f("segment_bytes_dead", cs.SegmentBytesDead)
	f("segments_evicted", cs.SegmentsEvicted)
	f("segments_expired", cs.SegmentsExpired)
}

func (srv *Server) slabsStats(emit func(name, value string)) {
	cs := srv.cache.Stats()
	c := srv.reg.Snapshot()
	used := cs.SegmentsOpen + cs.SegmentsSealed
	if used > 0 {
		f := func(name string, v uint64) { emit("1:"+name, u64(v)) }
		f("chunk_size", cs.SegmentSize)
		f("chunks_per_page", 1)
		f("total_pages", used)
		f("total_chunks", used)
		f("used_chunks", used)
		f("free_chunks", cs.SegmentsFree)
		f("free_chunks_end", 0)
		f("get_hits", c[stats.GetHits])
		f("cmd_set", c[stats.CmdSet])
		f("delete_hits", c[stats.DeleteHits])
		f("incr_hits", c[stats.IncrHits])
		f("decr_hits", c[stats.DecrHits])
		f("cas_hits", c[stats.CasHits])
		f("cas_badval", c[stats.CasBadval])
		f("touch_hits", c[stats.TouchHits])
	}
	active := uint64(0)
	if used > 0 {
		active = 1
	}
	emit("active_slabs", u64(active))
	emit("total_malloced", u64(used*cs.SegmentSize))
}

// connsStats lists the listeners, the UDP readers and the client
// connections, as memcached's `stats conns` does; ids are Petrel's
// connection numbers rather than file descriptors.
func (srv *Server) connsStats(emit func(name, value string)) {
	now := time.Now().Unix()
	type row struct {
		id                  uint64
		udp                 bool
		addr, listen, state string
		last                int64
	}
	var rows []row
	srv.mu.Lock()
	for i, ln := range srv.listeners {
		rows = append(rows, row{id: srv.listenerIDs[i], addr: addrString(ln.Addr()), state: "conn_listening", last: now})
	}
	for _, u := range srv.udps {
		rows = append(rows, row{id: u.id, udp: true, addr: addrString(u.uc.LocalAddr()), state: "conn_read", last: u.lastCmd.Load()})
	}
	for c := range srv.conns {
		rows = append(rows, row{id: c.id, addr: c.remote, listen: c.local, state: stateNames[c.state.Load()], last: c.lastCmd.Load()})
	}
	srv.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	for _, r := range rows {
		p := u64(r.id) + ":"
		if r.udp {
			emit(p+"UDP", "UDP")
		}
		emit(p+"addr", r.addr)
		if r.listen != "" {
			emit(p+"listen_addr", r.listen)
		}
		emit(p+"state", r.state)
		emit(p+"secs_since_last_cmd", i64(max(now-r.last, 0)))
	}
}
