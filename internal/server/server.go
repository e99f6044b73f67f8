// Package server is Petrel's connection layer: listeners, one goroutine per
// connection, request batching and reply ordering, UDP framing, `stats`
// exposition and the admin HTTP endpoint.
//
// It follows memcached's shape (a read buffer per connection, every complete
// request in it executed before the replies go out in one write) but uses
// Go's netpoller and a goroutine per connection instead of libevent worker
// threads. The protocol executors (exec_*.go) only see bytes in and bytes out
// through the session/step contract in session.go, so an epoll loop could
// replace conn.go without touching them.
package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/cache"
	"petrel/internal/stats"
)

// Server is one running petrel server.
type Server struct {
	cfg   Config // immutable after New
	cache *cache.Cache
	reg   *stats.Registry

	// exec runs the first request in buf. It is (*session).exec, narrowed
	// by -B; tests replace it with a fake executor.
	exec func(s *session, buf []byte) step

	start   time.Time
	verbose atomic.Int32
	logger  *log.Logger
	metrics *metrics
	dur     *durable // nil when durability is off (durable.go)

	clog   cmdlogHub   // the command logger (cmdlog.go)
	status statusRates // the status page's recent looks at the counters (status.go)

	currConns   atomic.Int64
	totalConns  atomic.Uint64
	rejected    atomic.Uint64
	connStructs atomic.Int64 // high-water mark of concurrent connections
	idleKicks   atomic.Uint64
	nextID      atomic.Uint64

	closing atomic.Bool
	stop    chan struct{} // closed when shutdown begins
	// startStop is NewContext's context: done when the process is asked
	// to stop while New is still loading the memory tier.
	startStop context.Context
	// abandon is cancelled once shutdown stops waiting for connections
	// (all closed, or the grace period over): replies still waiting for
	// the backend (write-through) give up then, and their connections
	// close unacknowledged.
	abandon       context.Context
	abandonCancel context.CancelFunc
	shutdownCh    chan struct{} // closed by the `shutdown` command
	reqOnce       sync.Once
	stopOnce      sync.Once

	mu          sync.Mutex
	conns       map[*conn]struct{}
	udps        []*udpWorker
	listeners   []net.Listener
	listenerIDs []uint64 // `stats conns` numbers, parallel to listeners
	udpConns    []*net.UDPConn
	adminLn     net.Listener
	admin       *http.Server
	listening   bool

	connWG sync.WaitGroup // client connections
	bgWG   sync.WaitGroup // accept loops, UDP readers, tickers, admin
	pool   sync.Pool      // *conn with its buffers, reused across connections
}

// New builds a server and its cache. It opens no sockets: Listen does.
func New(cfg Config) (*Server, error) { return NewContext(context.Background(), cfg) }

// NewContext is New with a context that stops the warm-up (the loading of
// the memory tier from the journal and the store, which New does unless
// --accept-during-warmup) when it is done: New then returns an error that
// matches ErrStopped, and nothing is lost.
func NewContext(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cc := cache.Config{
		MemoryLimit: cfg.MemoryMB << 20,
		SegmentSize: cfg.SegmentSize,
		MaxItemSize: cfg.MaxItemSize,
		Eviction:    cfg.Eviction,
	}
	if cfg.NoEvict {
		cc.Eviction = cache.EvictNone
	}
	c, err := cache.New(cc)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	srv := &Server{
		cfg:        cfg,
		cache:      c,
		reg:        stats.NewRegistry(),
		start:      time.Now(),
		logger:     log.New(os.Stderr, "petrel: ", log.LstdFlags),
		stop:       make(chan struct{}),
		shutdownCh: make(chan struct{}),
		conns:      make(map[*conn]struct{}),
		startStop:  ctx,
	}
	srv.abandon, srv.abandonCancel = context.WithCancel(context.Background())
	srv.verbose.Store(int32(cfg.Verbose))
	switch cfg.Protocol {
	case "ascii":
		// A binary magic byte is just a bad text line: execText answers ERROR.
		srv.exec = func(s *session, buf []byte) step { return s.execText(buf) }
	case "binary":
		srv.exec = func(s *session, buf []byte) step {
			if buf[0] != 0x80 {
				return step{n: len(buf), close: true} // memcached drops a non-binary client
			}
			return s.execBinary(buf)
		}
	default:
		srv.exec = (*session).exec
	}
	srv.metrics = newMetrics(srv)
	err = srv.openDurable()
	if err == nil {
		err = srv.initCmdlog()
	}
	if err != nil {
		// Stops what was started (the journal watcher; with a bad
		// command log, the whole durable state and its storer), as a
		// caller that goes on after the error expects.
		srv.Shutdown()
		return nil, err
	}
	return srv, nil
}

// Cache is the server's memory tier.
func (srv *Server) Cache() *cache.Cache { return srv.cache }

// logf logs when the verbosity is at least level.
func (srv *Server) logf(level int, format string, args ...any) {
	if int(srv.verbose.Load()) >= level {
		srv.logger.Printf(format, args...)
	}
}

// ApplyRuntime sets GOMAXPROCS from -t and GOMEMLIMIT from -m unless the
// environment already chose them. It returns what it did, for the log.
//
// The item segments and the hash index are mapped outside the Go heap
// (internal/cache), and GOMEMLIMIT does not count such memory, so the limit
// covers only what is on the heap: connection buffers, the journal's
// batches and the runtime, a fixed 64 MiB plus -m/16 for the buffers of the
// traffic a larger cache serves. It is a soft target that makes the
// collector work harder before the heap grows past it, never a cap that
// refuses allocations. Where the cache is on the heap (a race detector
// build) the item memory and an eighth for the index are added.
func ApplyRuntime(cfg Config) []string {
	var notes []string
	if cfg.Threads > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(cfg.Threads)
		notes = append(notes, fmt.Sprintf("GOMAXPROCS=%d (from -t)", cfg.Threads))
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := memoryLimit(cfg.MemoryMB<<20, cache.OffHeap())
		debug.SetMemoryLimit(limit)
		notes = append(notes, fmt.Sprintf("GOMEMLIMIT=%dMiB (from -m %d)", limit>>20, cfg.MemoryMB))
	}
	return notes
}

// memoryLimit is the GOMEMLIMIT for items bytes of segment memory (see
// ApplyRuntime).
func memoryLimit(items int64, offHeap bool) int64 {
	limit := 64<<20 + items/16
	if !offHeap {
		limit += items + items/8
	}
	return limit
}

// Listen opens every configured socket: TCP on each -l address, or the unix
// socket (-s, which disables the network as in memcached); UDP on -U; the
// admin HTTP listener. Serve calls it if the caller has not.
func (srv *Server) Listen() (err error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.listening {
		return nil
	}
	if srv.closing.Load() {
		return errors.New("listen: server is shut down")
	}
	defer func() {
		if err != nil {
			srv.closeListenersLocked()
		}
	}()
	cfg := srv.cfg
	if cfg.UnixSocket != "" {
		ln, err := listenUnix(cfg.UnixSocket, cfg.UnixMask)
		if err != nil {
			return err
		}
		srv.listeners = append(srv.listeners, ln)
	} else {
		for _, a := range splitList(cfg.Listen) {
			host, port, err := splitHostPort(a, cfg.Port)
			if err != nil {
				return err
			}
			if port >= 0 {
				ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
				if err != nil {
					return fmt.Errorf("listen tcp %s: %w", a, err)
				}
				srv.listeners = append(srv.listeners, ln)
			}
			if cfg.UDPPort > 0 {
				uc, err := net.ListenUDP("udp", udpAddr(host, cfg.UDPPort))
				if err != nil {
					return fmt.Errorf("listen udp %s:%d: %w", host, cfg.UDPPort, err)
				}
				srv.udpConns = append(srv.udpConns, uc)
			}
		}
	}
	if cfg.AdminAddr != "" {
		ln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("listen admin %s: %w", cfg.AdminAddr, err)
		}
		srv.adminLn = ln
	}
	for range srv.listeners {
		srv.listenerIDs = append(srv.listenerIDs, srv.nextID.Add(1))
	}
	srv.listening = true
	return nil
}

// splitList splits a comma list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// splitHostPort reads one -l entry: "host" takes the -p port (and a zero
// -p disables it, as in memcached: port -1 is returned), "host:port" names
// its own, so "127.0.0.1:0" asks the kernel for a free port.
func splitHostPort(a string, defPort int) (string, int, error) {
	host, ps, err := net.SplitHostPort(a)
	if err != nil {
		// No port; a bare IPv6 address may be bracketed.
		host = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		if defPort == 0 {
			return host, -1, nil
		}
		return host, defPort, nil
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("listen address %q: bad port", a)
	}
	return host, p, nil
}

func udpAddr(host string, port int) *net.UDPAddr {
	return &net.UDPAddr{IP: net.ParseIP(host), Port: port}
}

// Addrs returns the addresses of the TCP and unix listeners.
func (srv *Server) Addrs() []net.Addr {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var out []net.Addr
	for _, ln := range srv.listeners {
		out = append(out, ln.Addr())
	}
	return out
}

// UDPAddrs returns the addresses of the UDP sockets.
func (srv *Server) UDPAddrs() []net.Addr {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var out []net.Addr
	for _, uc := range srv.udpConns {
		out = append(out, uc.LocalAddr())
	}
	return out
}

// AdminAddr returns the admin listener's address, or nil.
func (srv *Server) AdminAddr() net.Addr {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.adminLn == nil {
		return nil
	}
	return srv.adminLn.Addr()
}

// Serve runs until ctx is done or a `shutdown` command arrives, then shuts
// down gracefully: it stops accepting, lets every connection finish the
// batch it is executing and write its replies, and closes. Connections still
// busy after Config.ShutdownGrace are closed hard.
func (srv *Server) Serve(ctx context.Context) error {
	if err := srv.Listen(); err != nil {
		return err
	}
	srv.mu.Lock()
	if srv.closing.Load() {
		srv.mu.Unlock()
		return nil // Shutdown came first
	}
	for _, ln := range srv.listeners {
		srv.bgWG.Add(1)
		go srv.acceptLoop(ln)
	}
	for _, uc := range srv.udpConns {
		srv.startUDPLocked(uc)
	}
	if srv.adminLn != nil {
		srv.admin = srv.newAdminServer()
		srv.bgWG.Add(1)
		go func(ln net.Listener) {
			defer srv.bgWG.Done()
			if err := srv.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				srv.logf(0, "admin: %v", err)
			}
		}(srv.adminLn)
	}
	srv.bgWG.Add(1)
	go srv.maintainLoop()
	srv.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-srv.shutdownCh:
	case <-srv.stop:
	}
	srv.Shutdown()
	return nil
}

// maintainLoop gives the cache its background second.
func (srv *Server) maintainLoop() {
	defer srv.bgWG.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-srv.stop:
			return
		case now := <-t.C:
			srv.cache.Maintain(now.Unix())
		}
	}
}

// acceptLoop admits connections up to -c. Beyond it, as memcached with
// maxconns_fast (its default), the client gets one error line and is closed
// — after a short grace: a client that has just hung up still holds its
// slot until its goroutine reads the EOF, and a pool that closes a
// connection and opens another at once should not be refused for that.
func (srv *Server) acceptLoop(ln net.Listener) {
	defer srv.bgWG.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if srv.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off rather than spin.
			srv.logf(0, "accept %s: %v", ln.Addr(), err)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if srv.acquireSlot() {
			srv.admit(nc, ln.Addr())
			continue
		}
		srv.bgWG.Add(1) // safe: this loop is itself counted
		go srv.admitLate(nc, ln.Addr())
	}
}

// connLimitGrace is how long a connection over the limit waits for a slot.
const connLimitGrace = 100 * time.Millisecond

// acquireSlot takes one of the -c connection slots if one is free.
func (srv *Server) acquireSlot() bool {
	for {
		n := srv.currConns.Load()
		if n >= int64(srv.cfg.MaxConns) {
			return false
		}
		if srv.currConns.CompareAndSwap(n, n+1) {
			for {
				hw := srv.connStructs.Load()
				if n+1 <= hw || srv.connStructs.CompareAndSwap(hw, n+1) {
					return true
				}
			}
		}
	}
}

// admitLate waits out the grace for a slot, then serves or refuses nc.
func (srv *Server) admitLate(nc net.Conn, local net.Addr) {
	defer srv.bgWG.Done()
	for deadline := time.Now().Add(connLimitGrace); time.Now().Before(deadline) && !srv.closing.Load(); {
		time.Sleep(time.Millisecond)
		if srv.acquireSlot() {
			srv.admit(nc, local)
			return
		}
	}
	srv.rejected.Add(1)
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write([]byte("ERROR Too many open connections\r\n"))
	_ = nc.Close()
}

// admit registers and starts a connection that holds a slot. Registration
// is under mu with a closing check, so a connection accepted as shutdown
// begins is either woken by it or never started, and connWG is never added
// to while shutdown waits on it.
func (srv *Server) admit(nc net.Conn, local net.Addr) {
	srv.mu.Lock()
	if srv.closing.Load() {
		srv.mu.Unlock()
		srv.currConns.Add(-1)
		_ = nc.Close()
		return
	}
	c := srv.newConnLocked(nc, local)
	srv.connWG.Add(1)
	srv.mu.Unlock()
	srv.totalConns.Add(1)
	srv.logf(2, "<%d new client connection from %s", c.id, c.remote)
	go c.serve()
}

// Shutdown stops the server gracefully (see Serve). It is safe to call more
// than once and from any goroutine; it returns when everything is closed.
func (srv *Server) Shutdown() {
	srv.stopOnce.Do(srv.shutdown)
}

func (srv *Server) shutdown() {
	// Under mu, so that Serve either has started all its goroutines (and
	// bgWG counts them) or sees closing and starts none.
	srv.mu.Lock()
	srv.closing.Store(true)
	close(srv.stop)
	srv.closeListenersLocked()
	for c := range srv.conns {
		c.wake()
	}
	admin := srv.admin
	srv.mu.Unlock()

	done := make(chan struct{})
	go func() { srv.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(srv.cfg.ShutdownGrace):
		srv.abandonCancel()
		srv.mu.Lock()
		for c := range srv.conns {
			_ = c.nc.Close()
		}
		srv.mu.Unlock()
		<-done
	}
	srv.abandonCancel() // UDP workers (bgWG) may still wait
	if admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = admin.Shutdown(ctx)
		cancel()
	}
	srv.bgWG.Wait()
	srv.closeDurable()
	srv.closeCmdlog()
}

func (srv *Server) closeListenersLocked() {
	for _, ln := range srv.listeners {
		_ = ln.Close()
	}
	for _, uc := range srv.udpConns {
		_ = uc.Close()
	}
	if srv.adminLn != nil && srv.admin == nil {
		_ = srv.adminLn.Close()
	}
}

// resetStats clears the counters (`stats reset`).
func (srv *Server) resetStats() {
	srv.reg.Reset()
	srv.totalConns.Store(0)
	srv.rejected.Store(0)
	srv.idleKicks.Store(0)
}

// setVerbosity applies `verbosity N`.
func (srv *Server) setVerbosity(v int) { srv.verbose.Store(int32(v)) }

// shutdownRequested handles the `shutdown` command when -A allowed it: it
// starts a graceful shutdown and reports true; without -A it reports false
// and the executor answers with memcached's error.
func (srv *Server) shutdownRequested() bool {
	if !srv.cfg.EnableShutdown {
		return false
	}
	srv.reqOnce.Do(func() { close(srv.shutdownCh) })
	return true
}
