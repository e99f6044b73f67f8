package server

import (
	"strings"
	"testing"
)

func statsList(t *testing.T, srv *Server, section string) ([]string, map[string]string, bool) {
	t.Helper()
	var names []string
	m := map[string]string{}
	s := &session{srv: srv, cache: srv.cache}
	ok := s.statsPairs(section, func(k, v string) {
		if _, dup := m[k]; dup {
			t.Errorf("stats %q: %s printed twice", section, k)
		}
		names = append(names, k)
		m[k] = v
	})
	return names, m, ok
}

// The general section keeps memcached 1.6.18's order for the fields both
// print (taken from a real memcached's `stats`).
func TestGeneralStatsOrder(t *testing.T) {
	srv, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	names, m, ok := statsList(t, srv, "")
	if !ok {
		t.Fatal("general section refused")
	}
	memcached := strings.Fields(`pid uptime time version pointer_size rusage_user rusage_system
		max_connections curr_connections total_connections rejected_connections connection_structures
		cmd_get cmd_set cmd_flush cmd_touch cmd_meta get_hits get_misses get_expired get_flushed
		delete_misses delete_hits incr_misses incr_hits decr_misses decr_hits cas_misses cas_hits
		cas_badval touch_hits touch_misses store_too_large store_no_memory bytes_read bytes_written
		limit_maxbytes accepting_conns threads hash_bytes bytes curr_items total_items
		expired_unfetched evicted_unfetched evictions reclaimed`)
	pos := map[string]int{}
	for i, n := range names {
		pos[n] = i
	}
	last := -1
	for _, n := range memcached {
		p, ok := pos[n]
		if !ok {
			t.Errorf("stats lacks %s", n)
			continue
		}
		if p < last {
			t.Errorf("%s out of memcached's order", n)
		}
		last = p
	}
	f := func(name, want string) {
		t.Helper()
		if m[name] != want {
			t.Errorf("%s = %q, want %q", name, m[name], want)
		}
	}
	f("version", Version)
	f("limit_maxbytes", "67108864")
	f("max_connections", "1024")
	f("pointer_size", "64")
}

func TestStatsSections(t *testing.T) {
	cfg := testConfig()
	cfg.NoCAS = true
	cfg.Protocol = "ascii"
	cfg.MaxItemSize = 2 << 20
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, set, ok := statsList(t, srv, "settings")
	f := func(name, want string) {
		t.Helper()
		if set[name] != want {
			t.Errorf("settings %s = %q, want %q", name, set[name], want)
		}
	}
	if !ok {
		t.Fatal("settings refused")
	}
	f("maxbytes", "67108864")
	f("cas_enabled", "no")
	f("binding_protocol", "ascii")
	f("item_size_max", "2097152")
	f("evictions", "on")
	f("umask", "700")
	f("eviction_policy", "fifo")
	f("domain_socket", "NULL")
	_, slabs, ok := statsList(t, srv, "slabs")
	if !ok || slabs["active_slabs"] == "" || slabs["total_malloced"] == "" {
		t.Errorf("slabs section %v %v", ok, slabs)
	}
	if _, _, ok := statsList(t, srv, "items"); !ok {
		t.Error("items refused")
	}
	if _, _, ok := statsList(t, srv, "conns"); !ok {
		t.Error("conns refused")
	}
	if _, _, ok := statsList(t, srv, "bogus"); ok {
		t.Error("unknown section accepted")
	}
}

func TestStatsConnsListsClients(t *testing.T) {
	srv, _ := startServer(t, testConfig())
	c := dialTCP(t, srv)
	st := c.stats("conns")
	var listening, parsing int
	for k, v := range st {
		if strings.HasSuffix(k, ":state") {
			switch v {
			case "conn_listening":
				listening++
			case "conn_parse_cmd":
				parsing++
			}
		}
	}
	if listening != 1 || parsing != 1 {
		t.Errorf("stats conns: %d listening, %d executing; want 1 and 1: %v", listening, parsing, st)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mut func(*Config), wantErr bool) {
		t.Helper()
		cfg := DefaultConfig()
		mut(&cfg)
		if err := cfg.Validate(); (err != nil) != wantErr {
			t.Errorf("Validate() = %v, want error %v", err, wantErr)
		}
	}
	f(func(c *Config) {}, false)
	f(func(c *Config) { c.MaxItemSize = 512 }, true)
	f(func(c *Config) { c.MaxItemSize = 2 << 30 }, true)
	f(func(c *Config) { c.Protocol = "json" }, true)
	f(func(c *Config) { c.MaxConns = 0 }, true)
	f(func(c *Config) { c.Port = 70000 }, true)
	f(func(c *Config) { c.IdleTimeout = -1 }, true)
}
