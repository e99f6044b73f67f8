package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/internal/cache"
	"petrel/internal/server"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// A flag beats the environment, which beats the file, which beats the default.
func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "petrel.toml")
	err := os.WriteFile(file, []byte(`
port = 1111
memory_limit = 100
conn_limit = 77
listen = "127.0.0.2"
eviction = "random"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	env := envMap(map[string]string{
		"PETREL_CONFIG":       file,
		"PETREL_PORT":         "2222",
		"PETREL_MEMORY_LIMIT": "200",
		"PETREL_EVICTION":     "merge",
	})
	cfg, _, err := loadConfig([]string{"-p", "3333", "-o", "eviction=none"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	def := server.DefaultConfig()
	f := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	f("port (flag)", cfg.Port, 3333)
	f("memory (env over file)", cfg.MemoryMB, int64(200))
	f("conns (file)", cfg.MaxConns, 77)
	f("listen (file)", cfg.Listen, "127.0.0.2")
	f("eviction (-o flag over env over file)", cfg.Eviction, cache.EvictNone)
	f("item size (default)", cfg.MaxItemSize, def.MaxItemSize)
	f("admin (default)", cfg.AdminAddr, def.AdminAddr)
}

func TestFlagForms(t *testing.T) {
	f := func(args string, check func(server.Config) bool) {
		t.Helper()
		cfg, _, err := loadConfig(strings.Fields(args), envMap(nil), &bytes.Buffer{})
		if err != nil {
			t.Errorf("%q: %v", args, err)
			return
		}
		if !check(cfg) {
			t.Errorf("%q: wrong config %+v", args, cfg)
		}
	}
	f("-p11", func(c server.Config) bool { return c.Port == 11 })
	f("--port=12", func(c server.Config) bool { return c.Port == 12 })
	f("--port 13", func(c server.Config) bool { return c.Port == 13 })
	f("-vv", func(c server.Config) bool { return c.Verbose == 2 })
	f("-v -v -v", func(c server.Config) bool { return c.Verbose == 3 })
	f("-MC", func(c server.Config) bool { return c.NoEvict && c.NoCAS })
	f("-I 2m", func(c server.Config) bool { return c.MaxItemSize == 2<<20 })
	f("-I512k", func(c server.Config) bool { return c.MaxItemSize == 512<<10 })
	f("-m 1g", func(c server.Config) bool { return c.MemoryMB == 1024 })
	f("-a 755", func(c server.Config) bool { return c.UnixMask == 0o755 })
	f("-B ascii", func(c server.Config) bool { return c.Protocol == "ascii" })
	f("-o idle_timeout=30,segment_size=2m", func(c server.Config) bool {
		return c.IdleTimeout == 30*time.Second && c.SegmentSize == 2<<20
	})
	f("--admin=", func(c server.Config) bool { return c.AdminAddr == "" })
	f("--data-dir /tmp/x --backend-batch-delay=50ms --negative-cache-ttl 5s --journal-max-delay=200us", func(c server.Config) bool {
		b := c.Durable.Backend
		return b.BatchDelay == 50*time.Millisecond && b.NegativeTTL == 5*time.Second && c.Durable.JournalMaxDelay == 200*time.Microsecond
	})
	f("--data-dir /tmp/x --journal-retry=250ms", func(c server.Config) bool { return c.Durable.JournalRetry == 250*time.Millisecond })
	f("--data-dir /tmp/x --journal-retry 0", func(c server.Config) bool { return c.Durable.JournalRetry == 0 })
	f("--data-dir /tmp/x", func(c server.Config) bool { return c.Durable.JournalRetry == 5*time.Second })
	f("-A --daemon=false", func(c server.Config) bool { return c.EnableShutdown && !c.Daemonize })
	f("-t 3 -c 9 -R 5 -b 10 -U 4 -l 0.0.0.0 -s /tmp/x -u nobody -P /tmp/p",
		func(c server.Config) bool {
			return c.Threads == 3 && c.MaxConns == 9 && c.ReqsPerEvent == 5 && c.Backlog == 10 &&
				c.UDPPort == 4 && c.Listen == "0.0.0.0" && c.UnixSocket == "/tmp/x" &&
				c.User == "nobody" && c.PidFile == "/tmp/p"
		})
}

func TestBadSettingsAreErrors(t *testing.T) {
	f := func(args string, env map[string]string) {
		t.Helper()
		if _, _, err := loadConfig(strings.Fields(args), envMap(env), &bytes.Buffer{}); err == nil {
			t.Errorf("args %q env %v: accepted", args, env)
		}
	}
	f("-p", nil)
	f("-x", nil)
	f("--nope", nil)
	f("-I 100", nil)
	f("-B json", nil)
	f("-o eviction=lru", nil)
	f("-o frobnicate", nil)
	f("--data-dir /tmp/x --journal-retry=-1s", nil)
	f("--data-dir /tmp/x --journal-retry=often", nil)
	f("--backend-batch-delay=-1ms", nil)
	f("--backend-batch-delay=soon", nil)
	f("", map[string]string{"PETREL_NEGATIVE_CACHE_TTL": "-5s"})
	f("stray", nil)
	f("", map[string]string{"PETREL_PORT": "eleven"})
	f("", map[string]string{"PETREL_CONFIG": "/nonexistent/petrel.toml"})
}

func TestMemcachedExtendedOptionsWarn(t *testing.T) {
	var warn bytes.Buffer
	cfg, _, err := loadConfig([]string{"-o", "modern,hashpower=20,no_lru_crawler,eviction=merge"}, envMap(nil), &warn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Eviction != cache.EvictMerge {
		t.Errorf("eviction = %v", cfg.Eviction)
	}
	for _, o := range []string{"modern", "hashpower=20", "no_lru_crawler"} {
		if !strings.Contains(warn.String(), "petrel: ignoring unsupported option "+o+"\n") {
			t.Errorf("no warning for %s in %q", o, warn.String())
		}
	}
}

func TestConfigFileUnknownKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(file, []byte("prot = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadConfig([]string{"--config", file}, envMap(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `"prot"`) {
		t.Errorf("unknown key: err = %v", err)
	}
}

func TestUsageListsEveryFlag(t *testing.T) {
	var b bytes.Buffer
	printUsage(&b)
	for _, o := range options {
		if !strings.Contains(b.String(), "--"+o.long) {
			t.Errorf("usage lacks --%s", o.long)
		}
		if o.short != "" && !strings.Contains(b.String(), "-"+o.short+", ") {
			t.Errorf("usage lacks -%s", o.short)
		}
	}
	_, cl, _ := loadConfig([]string{"-h"}, envMap(nil), &bytes.Buffer{})
	if !cl.help {
		t.Error("-h not recognised")
	}
}
