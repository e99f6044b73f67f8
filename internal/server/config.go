package server

import (
	"fmt"
	"time"

	"petrel/internal/cache"
)

// Config is everything `petrel serve` can be told. cmd/petrel fills it from
// flags, PETREL_* environment variables and a TOML file (flag > env > file >
// default); docs/configuration.md lists every field.
type Config struct {
	Listen         string        // -l: comma list of addresses (host or host:port); default 127.0.0.1 (memcached: all interfaces)
	Port           int           // -p: TCP port, default 11211; 0 disables TCP
	UDPPort        int           // -U: UDP port, default 0 (off)
	UnixSocket     string        // -s: unix socket path; disables TCP and UDP when set (as memcached)
	UnixMask       uint32        // -a: access mask for the unix socket, default 0700
	MemoryMB       int64         // -m: megabytes for items, default 64
	MaxConns       int           // -c: simultaneous client connections, default 1024
	Threads        int           // -t: GOMAXPROCS when > 0; 0 leaves the Go runtime's choice (see docs)
	MaxItemSize    int           // -I: largest item, default 1 MiB
	Verbose        int           // -v, -vv
	NoEvict        bool          // -M: return errors instead of evicting
	NoCAS          bool          // -C: CAS disabled (gets returns 0)
	ReqsPerEvent   int           // -R: requests run per read before the replies are flushed, default 20
	Backlog        int           // -b: listen backlog, default 1024 (advisory: Go uses the kernel's somaxconn)
	Protocol       string        // -B: auto|ascii|binary, default auto
	EnableShutdown bool          // -A: allow the `shutdown` command
	Eviction       cache.Policy  // -o eviction=fifo|merge|random|none
	SegmentSize    int           // -o segment_size=BYTES: bytes per cache segment; 0 is the engine's default (1 MiB)
	IdleTimeout    time.Duration // -o idle_timeout=SECONDS; 0 means none
	AdminAddr      string        // --admin: HTTP listener for /metrics and /debug/pprof, default 127.0.0.1:11212; empty disables
	Daemonize      bool          // -d
	PidFile        string        // -P
	User           string        // -u
	Cmdlog         CmdlogConfig  // --cmdlog*: the command logger (cmdlog.go)
	AnalysisDir    string        // --analysis-dir: the status page shows DIR/mrc.svg from `petrel analyze --out DIR`

	// ShutdownGrace bounds how long a graceful shutdown waits for
	// connections to finish their in-flight batch before closing them.
	ShutdownGrace time.Duration

	// Durable is the journal and storage setting (durable_config.go).
	Durable DurableConfig
}

// DefaultConfig returns memcached 1.6.18's defaults, except that Petrel
// listens on 127.0.0.1 rather than every interface unless told otherwise: a
// cache without authentication should not be reachable from the network by
// accident.
func DefaultConfig() Config {
	return Config{
		Listen:        "127.0.0.1",
		Port:          11211,
		UnixMask:      0o700,
		MemoryMB:      64,
		MaxConns:      1024,
		MaxItemSize:   1 << 20,
		ReqsPerEvent:  20,
		Backlog:       1024,
		Protocol:      "auto",
		Eviction:      cache.EvictFIFO,
		AdminAddr:     "127.0.0.1:11212",
		ShutdownGrace: 5 * time.Second,
		Cmdlog:        DefaultCmdlogConfig(),
		Durable:       DurableConfig{JournalRetry: 5 * time.Second},
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("port %d out of range", c.Port)
	case c.UDPPort < 0 || c.UDPPort > 65535:
		return fmt.Errorf("udp port %d out of range", c.UDPPort)
	case c.MemoryMB <= 0:
		return fmt.Errorf("memory limit must be positive, got %d MB", c.MemoryMB)
	case c.MaxConns <= 0:
		return fmt.Errorf("max connections must be positive, got %d", c.MaxConns)
	case c.MaxItemSize < 1024:
		return fmt.Errorf("item max size cannot be less than 1024 bytes, got %d", c.MaxItemSize)
	case c.MaxItemSize > 1<<30:
		return fmt.Errorf("cannot set item size limit higher than 1 gigabyte, got %d", c.MaxItemSize)
	case c.Threads < 0:
		return fmt.Errorf("threads must not be negative, got %d", c.Threads)
	case c.ReqsPerEvent <= 0:
		return fmt.Errorf("reqs per event must be positive, got %d", c.ReqsPerEvent)
	case c.Protocol != "auto" && c.Protocol != "ascii" && c.Protocol != "binary":
		return fmt.Errorf("protocol %q: want auto, ascii or binary", c.Protocol)
	case c.Eviction > cache.EvictNone:
		return fmt.Errorf("unknown eviction policy %d", c.Eviction)
	case c.SegmentSize < 0:
		return fmt.Errorf("segment size must not be negative, got %d", c.SegmentSize)
	case c.IdleTimeout < 0:
		return fmt.Errorf("idle timeout must not be negative, got %v", c.IdleTimeout)
	case c.UnixMask > 0o777:
		return fmt.Errorf("unix socket mask %o out of range", c.UnixMask)
	}
	return c.Durable.validate()
}
