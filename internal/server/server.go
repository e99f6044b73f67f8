package server

// STUB: the connection layer owns this file and replaces it.

import (
	"petrel/internal/cache"
	"petrel/internal/stats"
)

// Server is one running petrel server.
type Server struct {
	cfg   Config
	cache *cache.Cache
	reg   *stats.Registry
}

// statsPairs emits the name/value pairs of `stats <section>` ("" is the
// general set; "settings", "items", "slabs", "conns"). It returns false for
// an unknown section. `stats reset` is handled by resetStats.
func (s *session) statsPairs(section string, emit func(name, value string)) bool {
	return section == ""
}

// resetStats clears the counters (`stats reset`).
func (srv *Server) resetStats() { srv.reg.Reset() }

// setVerbosity applies `verbosity N`.
func (srv *Server) setVerbosity(v int) { srv.cfg.Verbose = v }

// shutdownRequested handles the `shutdown` command when -A allowed it; it
// reports whether shutdown is enabled.
func (srv *Server) shutdownRequested() bool { return srv.cfg.EnableShutdown }
