package server

import (
	"time"

	"petrel/internal/cache"
)

// Config is everything `petrel serve` can be told. cmd/petrel fills it from
// flags, PETREL_* environment variables and a TOML file (flag > env > file >
// default); docs/configuration.md lists every field.
type Config struct {
	Listen         string        // -l: comma list of addresses to bind; default 127.0.0.1? see docs
	Port           int           // -p: TCP port, default 11211; 0 disables TCP
	UDPPort        int           // -U: UDP port, default 0 (off)
	UnixSocket     string        // -s: unix socket path; disables TCP when set (as memcached)
	UnixMask       uint32        // -a: access mask for the unix socket, default 0700
	MemoryMB       int64         // -m: megabytes for items, default 64
	MaxConns       int           // -c: simultaneous connections, default 1024
	Threads        int           // -t: worker threads (GOMAXPROCS hint), default 4
	MaxItemSize    int           // -I: largest item, default 1 MiB
	Verbose        int           // -v, -vv
	NoEvict        bool          // -M: return errors instead of evicting
	NoCAS          bool          // -C: CAS disabled (gets returns 0)
	ReqsPerEvent   int           // -R: max requests handled per read before yielding, default 20
	Backlog        int           // -b: listen backlog, default 1024
	Protocol       string        // -B: auto|ascii|binary, default auto
	EnableShutdown bool          // -A: allow the `shutdown` command
	Eviction       cache.Policy  // -o eviction=fifo|merge|random|none
	IdleTimeout    time.Duration // -o idle_timeout=SECONDS; 0 means none
	AdminAddr      string        // --admin: HTTP listener for /metrics and /debug/pprof, default 127.0.0.1:11212; empty disables
	Daemonize      bool          // -d
	PidFile        string        // -P
	User           string        // -u
}
