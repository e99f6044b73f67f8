package server

// memcached's UDP transport. Every datagram starts with an 8-byte frame
// header of four big-endian 16-bit fields: request id, sequence number,
// datagram count and a reserved zero. A request must fit one datagram
// (memcached drops a request whose count is not 1, and so does Petrel); the
// requests in it are executed in order, and each reply is cut into
// datagrams of at most 1400 bytes, header included, that echo the request
// id and number themselves 0..count-1. Incomplete requests are dropped
// without a reply, as memcached drops them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"petrel/internal/stats"
)

const (
	udpHeaderLen   = 8
	udpMaxDatagram = 1400
	udpMaxPayload  = udpMaxDatagram - udpHeaderLen
)

// udpHeader is the frame header of one datagram.
type udpHeader struct {
	ID, Seq, Count, Reserved uint16
}

// decodeUDP splits a request datagram into its header and body; ok is false
// for a datagram too short to carry a header.
func decodeUDP(d []byte) (h udpHeader, body []byte, ok bool) {
	if len(d) < udpHeaderLen {
		return h, nil, false
	}
	h = udpHeader{
		ID:       binary.BigEndian.Uint16(d[0:]),
		Seq:      binary.BigEndian.Uint16(d[2:]),
		Count:    binary.BigEndian.Uint16(d[4:]),
		Reserved: binary.BigEndian.Uint16(d[6:]),
	}
	return h, d[udpHeaderLen:], true
}

// frameUDP cuts reply into datagrams for request id and hands each to send.
// scratch must hold udpMaxDatagram bytes; send must not keep it.
func frameUDP(id uint16, reply, scratch []byte, send func([]byte) error) error {
	count := (len(reply) + udpMaxPayload - 1) / udpMaxPayload
	if count > 0xffff {
		return fmt.Errorf("udp reply of %d bytes needs %d datagrams, over 65535", len(reply), count)
	}
	for seq := 0; seq < count; seq++ {
		chunk := reply[seq*udpMaxPayload : min((seq+1)*udpMaxPayload, len(reply))]
		d := scratch[:udpHeaderLen+len(chunk)]
		binary.BigEndian.PutUint16(d[0:], id)
		binary.BigEndian.PutUint16(d[2:], uint16(seq))
		binary.BigEndian.PutUint16(d[4:], uint16(count))
		binary.BigEndian.PutUint16(d[6:], 0)
		copy(d[udpHeaderLen:], chunk)
		if err := send(d); err != nil {
			return err
		}
	}
	return nil
}

// udpWorker is one reader of a UDP socket with its own session; memcached
// runs one per worker thread on each UDP socket.
type udpWorker struct {
	srv     *Server
	uc      *net.UDPConn
	id      uint64
	sess    session
	lastCmd atomic.Int64
}

// startUDPLocked starts the readers of uc. srv.mu is held.
func (srv *Server) startUDPLocked(uc *net.UDPConn) {
	n := min(max(srv.cfg.Threads, 1), 4)
	if srv.cfg.Threads == 0 {
		n = 4 // memcached's num_threads_per_udp default
	}
	for range n {
		u := &udpWorker{srv: srv, uc: uc, id: srv.nextID.Add(1)}
		u.sess = session{srv: srv, cache: srv.cache, stats: srv.reg.NewWorker(), udp: true}
		u.lastCmd.Store(time.Now().Unix())
		srv.udps = append(srv.udps, u)
		srv.bgWG.Add(1)
		go u.serve()
	}
}

func (u *udpWorker) serve() {
	defer u.srv.bgWG.Done()
	srv, s := u.srv, &u.sess
	in := make([]byte, 64<<10)
	scratch := make([]byte, udpMaxDatagram)
	for {
		n, from, err := u.uc.ReadFromUDPAddrPort(in)
		if err != nil {
			if srv.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			srv.logf(1, "udp read: %v", err)
			continue
		}
		s.stats.Add(stats.BytesRead, uint64(n))
		h, body, ok := decodeUDP(in[:n])
		if !ok || h.Count != 1 {
			continue
		}
		start := time.Now()
		s.now = start.Unix()
		u.lastCmd.Store(s.now)
		u.run(h.ID, body, from, scratch, start)
	}
}

// run executes the requests of one datagram, replying to each separately.
func (u *udpWorker) run(id uint16, body []byte, to netip.AddrPort, scratch []byte, start time.Time) {
	srv, s := u.srv, &u.sess
	send := func(d []byte) error {
		n, err := u.uc.WriteToUDPAddrPort(d, to)
		s.stats.Add(stats.BytesWritten, uint64(n))
		return err
	}
	var fams famCounts
	defer fams.observe(srv.metrics, start)
	for len(body) > 0 {
		fam := classify(body)
		s.out = s.out[:0]
		st := srv.exec(s, body)
		if l := srv.clog.cur.Load(); l != nil {
			s.logUDP(l, to, body, st, 0) // cmdlog_capture.go
		}
		if st.n == 0 || st.n > len(body) {
			return
		}
		fams[fam]++
		body = body[st.n:]
		body = body[min(st.swallow, len(body)):]
		if err := s.awaitDurable(); err != nil {
			srv.logger.Printf("udp reply to %v dropped, it cannot be acknowledged: %v", to, err)
			s.out = s.out[:0]
		}
		if len(s.out) > 0 {
			if err := frameUDP(id, s.out, scratch, send); err != nil {
				srv.logf(1, "udp reply to %v: %v", to, err)
			}
		}
		if cap(s.out) > outPoolMax {
			s.out = nil
		}
		if st.close {
			return
		}
	}
}
