package server

// One goroutine per stream connection (TCP or unix). The loop is memcached's
// drive_machine reduced to its data path: read what the socket has, execute
// every complete request in the buffer, write all their replies with one
// write, repeat. Nothing here knows a protocol beyond the step contract,
// except classify, which only labels latency samples.

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/stats"
)

const (
	// idleBufSize is the read buffer every connection owns. A connection
	// waiting for its next request holds only this; larger buffers are
	// borrowed from pools for the length of a batch, so ten thousand idle
	// clients cost ten thousand small arrays, not ten thousand 16 KiB
	// buffers (memcached likewise returns read buffers of idle connections).
	idleBufSize = 2 << 10
	readBufSize = 16 << 10 // pooled read buffer, for requests and pipelines beyond idleBufSize
	outBufSize  = 16 << 10 // pooled reply buffer
	// outFlushAt bounds the reply buffer of one batch: a pipeline of large
	// gets is written in pieces rather than held whole.
	outFlushAt = 1 << 20
	// outPoolMax is the largest reply buffer returned to the pool.
	outPoolMax = outFlushAt + 64<<10
)

// Pools hold *[]byte so that Put does not allocate.
var (
	readPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}
	outPool  = sync.Pool{New: func() any { b := make([]byte, 0, outBufSize); return &b }}
)

// Connection states, named as memcached's `stats conns` prints them.
const (
	stateWaiting int32 = iota // blocked reading
	stateParse                // executing requests
	stateWrite                // writing replies
	stateSwallow              // discarding an oversized value
)

var stateNames = [...]string{"conn_waiting", "conn_parse_cmd", "conn_mwrite", "conn_swallow"}

// conn is one client connection. sess belongs to the serving goroutine;
// the atomics are read by `stats conns` and shutdown.
type conn struct {
	srv     *Server
	nc      net.Conn
	id      uint64
	local   string // "tcp:127.0.0.1:11211"
	remote  string
	sess    session
	state   atomic.Int32
	lastCmd atomic.Int64 // unix seconds of the last batch

	buf  []byte  // current read buffer: idle[:], a pooled buffer, or a large one
	bufp *[]byte // the pooled buffer buf came from, if it did
	outp *[]byte // the pooled buffer sess.out came from, if it did
	idle [idleBufSize]byte
}

// newConnLocked prepares a connection; srv.mu is held.
func (srv *Server) newConnLocked(nc net.Conn, local net.Addr) *conn {
	c, _ := srv.pool.Get().(*conn)
	if c == nil {
		c = new(conn)
	}
	c.srv, c.nc = srv, nc
	c.id = srv.nextID.Add(1)
	c.local = addrString(local)
	c.remote = addrString(nc.RemoteAddr())
	scratch := c.sess.scratch[:0]
	if cap(scratch) > 64<<10 {
		scratch = nil
	}
	// A fresh session: executors may have added fields, none may leak from
	// the previous client.
	c.sess = session{
		srv:     srv,
		cache:   srv.cache,
		stats:   srv.reg.NewWorker(),
		scratch: scratch,
	}
	c.buf = c.idle[:]
	c.state.Store(stateWaiting)
	c.lastCmd.Store(time.Now().Unix())
	srv.conns[c] = struct{}{}
	return c
}

func addrString(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.Network() + ":" + a.String()
}

// wake makes a blocked read return so the loop sees the server closing.
// The loop re-checks srv.closing after setting its own deadlines, so this
// deadline is never overwritten by a later idle deadline.
func (c *conn) wake() { _ = c.nc.SetReadDeadline(time.Unix(1, 0)) }

// finish closes the connection and returns its memory to the pools.
func (c *conn) finish() {
	srv := c.srv
	_ = c.nc.Close()
	srv.mu.Lock()
	delete(srv.conns, c)
	srv.mu.Unlock()
	srv.reg.Retire(c.sess.stats)
	c.sess.cmdlogRelease()
	srv.currConns.Add(-1)
	srv.logf(2, "<%d connection closed", c.id)
	c.setBuf(c.idle[:], nil)
	c.releaseOut()
	c.sess.stats = nil
	c.nc = nil
	srv.pool.Put(c)
	srv.connWG.Done()
}

// setBuf makes b (from pool entry p, or nil) the read buffer, returning the
// previous pooled buffer.
func (c *conn) setBuf(b []byte, p *[]byte) {
	if c.bufp != nil {
		readPool.Put(c.bufp)
	}
	c.buf, c.bufp = b, p
}

// bigBuf switches to a pooled buffer unless one is in use already.
func (c *conn) bigBuf() {
	if len(c.buf) < readBufSize {
		p := readPool.Get().(*[]byte)
		c.setBuf(*p, p)
	}
}

// takeOut gives the session a pooled reply buffer for a batch.
func (c *conn) takeOut() {
	if c.sess.out == nil {
		c.outp = outPool.Get().(*[]byte)
		c.sess.out = (*c.outp)[:0]
	}
}

// releaseOut returns the reply buffer once the batch is written.
func (c *conn) releaseOut() {
	if c.outp != nil && cap(c.sess.out) <= outPoolMax {
		*c.outp = c.sess.out[:0]
		outPool.Put(c.outp)
	}
	c.sess.out, c.outp = nil, nil
}

// serve is the connection's loop. buf[r:w] holds bytes read but not yet
// executed; swallow counts bytes still to be discarded as they arrive.
func (c *conn) serve() {
	defer c.finish()
	srv, s := c.srv, &c.sess
	maxBuf := max(srv.cfg.MaxItemSize+2048, readBufSize)
	idle := srv.cfg.IdleTimeout
	r, w, swallow := 0, 0, 0
	var fams famCounts
	for {
		c.armRead(idle)
		c.state.Store(stateWaiting)
		n, err := c.nc.Read(c.buf[w:])
		// A read that filled the buffer suggests more is queued (a pipeline
		// or a large value): read the next piece into a pooled buffer.
		filled := w+n == len(c.buf)
		if n > 0 {
			s.stats.Add(stats.BytesRead, uint64(n))
			w += n
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !srv.closing.Load() {
				srv.idleKicks.Add(1)
				srv.logf(1, "<%d idle timeout", c.id)
			}
			return // replies to a half-read batch are not owed
		}
		start := time.Now()
		s.now = start.Unix()
		c.lastCmd.Store(s.now)
		c.state.Store(stateParse)
		c.takeOut()

		if swallow > 0 {
			k := min(swallow, w-r)
			r += k
			swallow -= k
			if swallow > 0 {
				c.state.Store(stateSwallow)
			}
		}
		need := 0
		for swallow == 0 && r < w {
			buf := c.buf[r:w]
			fam := classify(buf)
			mark := len(s.out)
			st := srv.exec(s, buf)
			if l := srv.clog.cur.Load(); l != nil {
				s.logRequest(l, c.remote, buf, st, mark) // cmdlog_capture.go
			}
			if st.n == 0 {
				need = st.need
				break
			}
			if st.n > len(buf) {
				srv.logf(0, "<%d executor consumed %d of %d bytes; closing", c.id, st.n, len(buf))
				return
			}
			r += st.n
			fams[fam]++
			if st.swallow > 0 {
				k := min(st.swallow, w-r)
				r += k
				swallow = st.swallow - k
			}
			if st.close {
				c.flush()
				fams.observe(srv.metrics, start)
				return
			}
			if len(s.out) >= outFlushAt && !c.flush() {
				return
			}
		}
		if !c.flush() {
			return
		}
		c.releaseOut()
		fams.observe(srv.metrics, start)

		// Make room for what the next read must bring.
		switch {
		case r == w:
			r, w = 0, 0
			if swallow > 0 || filled {
				c.bigBuf()
			} else {
				c.setBuf(c.idle[:], nil)
			}
		case need > maxBuf:
			// The executor should have answered and swallowed; never buffer it.
			srv.logf(0, "<%d request needs %d bytes, over the %d limit; closing", c.id, need, maxBuf)
			return
		case need > len(c.buf)-r || w == len(c.buf):
			size := len(c.buf)
			if need > size {
				size = min(max(need, 2*size), maxBuf)
			} else if r == 0 && w == len(c.buf) {
				if size >= maxBuf {
					// An unterminated line as long as the largest item:
					// memcached closes such a client too.
					srv.logf(1, "<%d request line too long; closing", c.id)
					return
				}
				size = min(2*size, maxBuf)
			}
			if size == len(c.buf) {
				w = copy(c.buf, c.buf[r:w])
			} else {
				var nb []byte
				var np *[]byte
				if size <= readBufSize {
					np = readPool.Get().(*[]byte)
					nb = *np
				} else {
					nb = make([]byte, size)
				}
				w = copy(nb, c.buf[r:w])
				c.setBuf(nb, np)
			}
			r = 0
		}
	}
}

// armRead sets the idle deadline for the next read. Checking closing after
// setting it means a shutdown's wake is never overwritten: either shutdown
// woke us after this deadline was set, or we see closing and wake ourselves.
func (c *conn) armRead(idle time.Duration) {
	if idle > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
	}
	if c.srv.closing.Load() {
		c.wake()
	}
}

// flush writes the replies gathered so far with one write.
func (c *conn) flush() bool {
	s := &c.sess
	if len(s.out) == 0 {
		return true
	}
	c.state.Store(stateWrite)
	if err := s.awaitDurable(); err != nil {
		// Nothing unacknowledged is ever acknowledged: the held replies
		// are dropped with the connection.
		c.srv.logger.Printf("<%d closing the connection, its replies cannot be acknowledged: %v", c.id, err)
		return false
	}
	if d := c.srv.cfg.IdleTimeout; d > 0 {
		// A client that stops reading its replies is as idle as one that
		// stops sending.
		_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	}
	n, err := c.nc.Write(s.out)
	s.stats.Add(stats.BytesWritten, uint64(n))
	s.out = s.out[:0]
	if err != nil {
		if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.srv.logf(1, "<%d write: %v", c.id, err)
		}
		return false
	}
	return true
}
