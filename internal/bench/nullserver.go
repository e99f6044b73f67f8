package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// NullServer is a trivial memcached: it stores nothing and answers every get
// with a miss. Driving it shows how many operations per second the
// generator itself can issue (`petrel bench -server null`).
type NullServer struct {
	ln net.Listener
	wg sync.WaitGroup
}

// StartNullServer listens on a free loopback port.
func StartNullServer() (*NullServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("null server: %w", err)
	}
	s := &NullServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				serveNull(c)
			}()
		}
	}()
	return s, nil
}

// Addr is the host:port to dial.
func (s *NullServer) Addr() string { return s.ln.Addr().String() }

// Close stops listening; connections end when their clients close them.
func (s *NullServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func serveNull(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		var reply string
		switch string(f[0]) {
		case "get", "gets":
			reply = "END\r\n"
		case "mg":
			reply = "EN\r\n"
		case "set", "add", "replace", "append", "prepend", "ms":
			i := 4
			reply = "STORED\r\n"
			if f[0][0] == 'm' {
				i, reply = 2, "HD\r\n"
			}
			if len(f) <= i {
				reply = "ERROR\r\n"
				break
			}
			n, err := strconv.Atoi(string(f[i]))
			if err != nil || n < 0 {
				reply = "CLIENT_ERROR bad data chunk\r\n"
				break
			}
			if _, err := r.Discard(n + 2); err != nil {
				return
			}
		case "delete", "incr", "decr":
			reply = "NOT_FOUND\r\n"
		case "md", "ma":
			reply = "NF\r\n"
		default:
			reply = "ERROR\r\n"
		}
		w.WriteString(reply)
		// One write per batch of requests, as a real server would.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil && !errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}
