package server

// The admin listener: Prometheus metrics and the Go profiler, on their own
// address (default 127.0.0.1:11212) so that neither is reachable through the
// cache port.

import (
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (srv *Server) newAdminServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(srv.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv.statusRoutes(mux) // the status page, /status.json and /cmdlog (status.go)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}
