package cmdlog

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// sink is where the drainer writes lines. Only the drainer calls it.
type sink interface {
	line(rec *Record, client string)
	flush() error
	close() error
}

func openSink(o Options, l *Logger) (sink, error) {
	switch {
	case strings.HasPrefix(o.Dest, "udp://"):
		return newUDPSink(strings.TrimPrefix(o.Dest, "udp://"), o, l)
	case strings.HasPrefix(o.Dest, "tcp://"):
		addr := strings.TrimPrefix(o.Dest, "tcp://")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("cmdlog: destination %q: %w", o.Dest, err)
		}
		return &tcpSink{addr: addr, o: o, l: l}, nil
	}
	return newFileSink(o, l)
}

// fileSink writes to a file, rotating it by size: PATH is current, PATH.1
// the newest rotated file, PATH.Keep the oldest. Every file starts with
// the header line, so each can be read alone.
type fileSink struct {
	o    Options
	l    *Logger
	f    *os.File
	w    *bufio.Writer
	size int64 // bytes in the current file, buffered ones included
	buf  []byte
	err  error // a write error: lines are counted lost until a rotation reopens
}

func newFileSink(o Options, l *Logger) (*fileSink, error) {
	s := &fileSink{o: o, l: l}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open starts a fresh file at the path, header first. Appending to an old
// log would mix runs under one header; a restart therefore rotates.
func (s *fileSink) open() error {
	if fi, err := os.Stat(s.o.Dest); err == nil && fi.Size() > 0 {
		if err := s.shift(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(s.o.Dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cmdlog: %w", err)
	}
	s.f, s.err = f, nil
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, 256<<10)
	} else {
		s.w.Reset(f)
	}
	n, _ := s.w.WriteString(Header)
	s.size = int64(n)
	s.l.bytes.Add(uint64(n))
	return nil
}

// shift renames PATH.i to PATH.i+1 from the oldest down, dropping the one
// beyond Keep, and PATH to PATH.1 (or removes PATH when Keep is 0).
func (s *fileSink) shift() error {
	p := s.o.Dest
	if s.o.Keep == 0 {
		return removeIfExists(p)
	}
	if err := removeIfExists(p + "." + strconv.Itoa(s.o.Keep)); err != nil {
		return err
	}
	for i := s.o.Keep - 1; i >= 1; i-- {
		from := p + "." + strconv.Itoa(i)
		if err := os.Rename(from, p+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cmdlog: rotate: %w", err)
		}
	}
	if err := os.Rename(p, p+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cmdlog: rotate: %w", err)
	}
	return nil
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cmdlog: rotate: %w", err)
	}
	return nil
}

func (s *fileSink) line(rec *Record, client string) {
	s.buf = AppendLine(s.buf[:0], rec, client, s.o.HashKeys)
	if s.o.MaxSize > 0 && s.size+int64(len(s.buf)) > s.o.MaxSize && s.size > int64(len(Header)) {
		s.rotate()
	}
	if s.err != nil {
		s.l.lost.Add(1)
		return
	}
	n, err := s.w.Write(s.buf)
	s.size += int64(n)
	s.l.bytes.Add(uint64(n))
	if err != nil {
		s.fail(err)
		s.l.lost.Add(1)
		return
	}
	s.l.lines.Add(1)
}

func (s *fileSink) rotate() {
	if s.f != nil {
		if err := s.w.Flush(); err != nil {
			s.l.setErr(err)
		}
		_ = s.f.Close()
		s.f = nil
	}
	if err := s.open(); err != nil {
		s.fail(err)
		return
	}
	s.l.rotations.Add(1)
}

func (s *fileSink) fail(err error) {
	if s.err == nil {
		s.err = err
		s.l.setErr(err)
	}
}

func (s *fileSink) flush() error {
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

func (s *fileSink) close() error {
	if s.f == nil {
		return s.err
	}
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}

// maxDatagram keeps each UDP datagram within a typical path MTU.
const maxDatagram = 1400

// udpSink sends whole lines in datagrams of at most maxDatagram bytes, each
// starting with the header line, so that every datagram can be read alone
// and a lost one loses only its own lines.
type udpSink struct {
	o     Options
	l     *Logger
	c     net.Conn
	pkt   []byte
	lines int // lines in pkt
	buf   []byte
}

func newUDPSink(addr string, o Options, l *Logger) (*udpSink, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("cmdlog: %w", err)
	}
	return &udpSink{o: o, l: l, c: c, pkt: append(make([]byte, 0, maxDatagram+512), Header...)}, nil
}

func (s *udpSink) line(rec *Record, client string) {
	s.buf = AppendLine(s.buf[:0], rec, client, s.o.HashKeys)
	if len(s.pkt)+len(s.buf) > maxDatagram && s.lines > 0 {
		s.send()
	}
	s.pkt = append(s.pkt, s.buf...)
	s.lines++
}

func (s *udpSink) send() {
	if s.lines == 0 {
		return
	}
	if n, err := s.c.Write(s.pkt); err != nil {
		s.l.lost.Add(uint64(s.lines))
		s.l.setErr(err)
	} else {
		s.l.lines.Add(uint64(s.lines))
		s.l.bytes.Add(uint64(n))
	}
	s.pkt, s.lines = append(s.pkt[:0], Header...), 0
}

func (s *udpSink) flush() error { s.send(); return nil }
func (s *udpSink) close() error { s.send(); return s.c.Close() }

// tcpSink streams lines to a collector, header first on every connection.
// It connects lazily and, after a failure, retries at most once a second;
// lines while it has no connection are counted lost.
type tcpSink struct {
	addr  string
	o     Options
	l     *Logger
	c     net.Conn
	w     *bufio.Writer
	retry time.Time
	lines uint64 // lines buffered since the last flush
	buf   []byte
}

func (s *tcpSink) connect() bool {
	if s.c != nil {
		return true
	}
	if time.Now().Before(s.retry) {
		return false
	}
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		s.retry = time.Now().Add(time.Second)
		s.l.setErr(err)
		return false
	}
	s.c = c
	if s.w == nil {
		s.w = bufio.NewWriterSize(c, 64<<10)
	} else {
		s.w.Reset(c)
	}
	_, _ = s.w.WriteString(Header) // counted in bytes at the flush
	return true
}

func (s *tcpSink) line(rec *Record, client string) {
	if !s.connect() {
		s.l.lost.Add(1)
		return
	}
	s.buf = AppendLine(s.buf[:0], rec, client, s.o.HashKeys)
	if _, err := s.w.Write(s.buf); err != nil {
		s.drop(err)
		s.l.lost.Add(1)
		return
	}
	s.lines++
}

// drop closes a failed connection; its buffered lines are lost.
func (s *tcpSink) drop(err error) {
	s.l.setErr(err)
	s.l.lost.Add(s.lines)
	s.lines = 0
	_ = s.c.Close()
	s.c = nil
	s.retry = time.Now().Add(time.Second)
}

func (s *tcpSink) flush() error {
	if s.c == nil {
		return nil
	}
	_ = s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	n := s.w.Buffered()
	if err := s.w.Flush(); err != nil {
		s.drop(err)
		return err
	}
	s.l.lines.Add(s.lines)
	s.l.bytes.Add(uint64(n))
	s.lines = 0
	return nil
}

func (s *tcpSink) close() error {
	if s.c == nil {
		return nil
	}
	err := s.flush()
	if s.c != nil {
		if cerr := s.c.Close(); err == nil {
			err = cerr
		}
		s.c = nil
	}
	return err
}
