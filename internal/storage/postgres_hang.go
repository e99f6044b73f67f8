package storage

// Closing the pool of a PostgreSQL server that stopped answering. pgx
// closes a connection whose query was cancelled (a warm-up scan or a
// storer call cut short by a shutdown) by first sending the server a
// cancel request on a new connection and reading until the server
// closes both, for up to 15 s; the pool's Close waits for that. A frozen
// server never answers, so a shutdown would wait those 15 s for nothing:
// every Apply is a committed transaction, and there is nothing left to
// save. The pool's connections are therefore dialled through pgConns,
// which can cut them.

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// pgCloseGrace is how long Close lets the pool close its connections
// politely (a Terminate message each, which a server that answers takes
// at once) before it cuts them.
const pgCloseGrace = time.Second

// pgConns dials and keeps the open connections of one pool.
type pgConns struct {
	dialer pgconn.DialFunc
	ctx    context.Context // cancelled by cut: dials in progress give up
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[*pgConn]struct{}
}

func newPGConns(d pgconn.DialFunc) *pgConns {
	ctx, cancel := context.WithCancel(context.Background())
	return &pgConns{dialer: d, ctx: ctx, cancel: cancel, conns: map[*pgConn]struct{}{}}
}

// dial is the pool's DialFunc, also used by pgx for cancel requests.
func (s *pgConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	c, err := s.dialer(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	pc := &pgConn{Conn: c, set: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		c.Close()
		return nil, s.ctx.Err()
	}
	s.conns[pc] = struct{}{}
	return pc, nil
}

// cut closes every connection still open and refuses new ones, and
// returns how many it closed.
func (s *pgConns) cut() int {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.conns)
	for c := range s.conns {
		c.Conn.Close()
		delete(s.conns, c)
	}
	return n
}

// pgConn is a connection that leaves its pgConns when closed.
type pgConn struct {
	net.Conn
	set *pgConns
}

func (c *pgConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.conns, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}

// closePool closes the pool, cutting after pgCloseGrace the connections
// that are still open then, and reports how many it cut.
func closePool(closeFn func(), conns *pgConns) int {
	done := make(chan struct{})
	go func() {
		closeFn()
		close(done)
	}()
	t := time.NewTimer(pgCloseGrace)
	defer t.Stop()
	select {
	case <-done:
		conns.cancel()
		return 0
	case <-t.C:
	}
	n := conns.cut()
	<-done
	return n
}
