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
	"sync/atomic"
	"time"

	"petrel/internal/stats"
)

const (
	readBufSize = 16 << 10 // initial and pooled read buffer
	// outFlushAt bounds the reply buffer of one batch: a pipeline of large
	// gets is written in pieces rather than held whole.
	outFlushAt = 1 << 20
	// outKeepCap is the largest reply buffer kept between batches.
	outKeepCap = 256 << 10
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
	buf     []byte
	state   atomic.Int32
	lastCmd atomic.Int64 // unix seconds of the last batch
}

func (srv *Server) newConn(nc net.Conn, local net.Addr) *conn {
	c, _ := srv.pool.Get().(*conn)
	if c == nil {
		c = &conn{buf: make([]byte, readBufSize)}
	}
	c.srv, c.nc = srv, nc
	c.id = srv.nextID.Add(1)
	c.local = addrString(local)
	c.remote = addrString(nc.RemoteAddr())
	// A fresh session: executors may have added fields, none may leak from
	// the previous client. The buffers' memory is kept.
	c.sess = session{
		srv:     srv,
		cache:   srv.cache,
		stats:   srv.reg.NewWorker(),
		out:     c.sess.out[:0],
		scratch: c.sess.scratch[:0],
	}
	c.state.Store(stateWaiting)
	c.lastCmd.Store(time.Now().Unix())
	srv.mu.Lock()
	srv.conns[c] = struct{}{}
	srv.mu.Unlock()
	srv.logf(2, "<%d new client connection from %s", c.id, c.remote)
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

// finish closes the connection and returns its memory to the pool.
func (c *conn) finish() {
	srv := c.srv
	_ = c.nc.Close()
	srv.mu.Lock()
	delete(srv.conns, c)
	srv.mu.Unlock()
	srv.reg.Retire(c.sess.stats)
	srv.currConns.Add(-1)
	srv.logf(2, "<%d connection closed", c.id)
	if cap(c.sess.out) > outKeepCap {
		c.sess.out = nil
	}
	if len(c.buf) != readBufSize {
		c.buf = make([]byte, readBufSize)
	}
	c.sess.stats = nil
	c.nc = nil
	srv.pool.Put(c)
	srv.connWG.Done()
}

// serve is the connection's loop. buf[r:w] holds bytes read but not yet
// executed; swallow counts bytes still to be discarded as they arrive.
func (c *conn) serve() {
	defer c.finish()
	srv, s := c.srv, &c.sess
	maxBuf := max(srv.cfg.MaxItemSize+2048, readBufSize)
	idle := srv.cfg.IdleTimeout
	buf := c.buf
	r, w, swallow := 0, 0, 0
	var fams famCounts
	for {
		if !c.armRead(idle) {
			return
		}
		c.state.Store(stateWaiting)
		n, err := c.nc.Read(buf[w:])
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
			fam := classify(buf[r:w])
			st := srv.exec(s, buf[r:w])
			if st.n == 0 {
				need = st.need
				break
			}
			if st.n > w-r {
				srv.logf(0, "<%d executor consumed %d of %d bytes; closing", c.id, st.n, w-r)
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
		fams.observe(srv.metrics, start)

		// Make room for what the next read must bring.
		switch {
		case r == w:
			r, w = 0, 0
			if len(buf) > readBufSize {
				buf = make([]byte, readBufSize) // a big request passed; shed its buffer
			}
		case need > maxBuf:
			// The executor should have answered and swallowed; never buffer it.
			srv.logf(0, "<%d request needs %d bytes, over the %d limit; closing", c.id, need, maxBuf)
			return
		case need > len(buf)-r || w == len(buf):
			size := len(buf)
			if need > size {
				size = min(max(need, 2*size), maxBuf)
			} else if r == 0 && w == len(buf) {
				if size >= maxBuf {
					// An unterminated line as long as the largest item:
					// memcached closes such a client too.
					srv.logf(1, "<%d request line too long; closing", c.id)
					return
				}
				size = min(2*size, maxBuf)
			}
			if size != len(buf) {
				nb := make([]byte, size)
				w = copy(nb, buf[r:w])
				buf = nb
			} else {
				w = copy(buf, buf[r:w])
			}
			r = 0
		}
		c.buf = buf
	}
}

// armRead sets the idle deadline for the next read and reports whether the
// connection should keep going.
func (c *conn) armRead(idle time.Duration) bool {
	if idle > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
	}
	if c.srv.closing.Load() {
		c.wake()
	}
	return true
}

// flush writes the batch's replies with one write and resets the buffer.
func (c *conn) flush() bool {
	s := &c.sess
	if len(s.out) == 0 {
		return true
	}
	c.state.Store(stateWrite)
	n, err := c.nc.Write(s.out)
	s.stats.Add(stats.BytesWritten, uint64(n))
	if cap(s.out) > outKeepCap {
		s.out = make([]byte, 0, readBufSize)
	} else {
		s.out = s.out[:0]
	}
	if err != nil {
		if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.srv.logf(1, "<%d write: %v", c.id, err)
		}
		return false
	}
	return true
}
