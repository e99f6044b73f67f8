package test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// TestUnixSocket serves over a unix socket (-s) and checks a set and a get
// with raw bytes and with gomemcache, against memcached and petrel.
func TestUnixSocket(t *testing.T) {
	for _, impl := range []string{"memcached", "petrel"} {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			s := startFeature(t, impl, listenOpts{unix: true}, "the unix socket listener (-s)")
			if _, err := os.Stat(s.addr); err != nil {
				t.Fatalf("socket file: %v", err)
			}
			c := s.dial(t)
			got := roundTrip(t, c, "set u 3 0 5\r\nhello\r\nget u\r\n", "END\r\n")
			if want := "STORED\r\nVALUE u 3 5\r\nhello\r\nEND\r\n"; got != want {
				t.Errorf("over the unix socket: got %q, want %q", got, want)
			}
			mc := memcache.New(s.addr)
			mc.Timeout = 30 * time.Second
			if err := mc.Set(&memcache.Item{Key: "g", Value: []byte("gomemcache")}); err != nil {
				t.Fatalf("gomemcache set over the unix socket: %v", err)
			}
			it, err := mc.Get("g")
			if err != nil || string(it.Value) != "gomemcache" {
				t.Errorf("gomemcache get over the unix socket = %v, %v", it, err)
			}
		})
	}
}

// TestUDP checks the UDP listener (-U): every datagram starts with memcached's
// 8-byte frame header (request id, sequence number, datagram count,
// reserved), and a reply too large for one datagram is split in several.
func TestUDP(t *testing.T) {
	for _, impl := range []string{"memcached", "petrel"} {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			s := startFeature(t, impl, listenOpts{udp: true}, "the UDP listener (-U)")
			u, err := net.Dial("udp", s.udpAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()

			// Probe first, so that a server without UDP skips instead of failing.
			if _, err := udpRequest(u, 1, "version\r\n"); err != nil {
				if impl == "petrel" && !udpPortBound(s.udpAddr) {
					skipMissing(t, "the UDP listener (-U)", "nothing is bound to "+s.udpAddr)
				}
				t.Fatalf("version over UDP: %v", err)
			}

			// set over TCP, get over UDP.
			tcp := s.dial(t)
			if got := roundTrip(t, tcp, "set a 5 0 1\r\nx\r\n", "\r\n"); got != "STORED\r\n" {
				t.Fatalf("set over TCP: %q", got)
			}
			check := func(id uint16, req, want string) {
				t.Helper()
				got, err := udpRequest(u, id, req)
				if err != nil {
					t.Errorf("%q over UDP: %v", req, err)
				} else if got != want {
					t.Errorf("%q over UDP: got %q, want %q", req, got, want)
				}
			}
			check(2, "get a\r\n", "VALUE a 5 1\r\nx\r\nEND\r\n")
			check(3, "get missing\r\n", "END\r\n")

			// set over UDP, get over TCP.
			check(4, "set b 0 0 2\r\nyz\r\n", "STORED\r\n")
			if got := roundTrip(t, tcp, "get b\r\n", "END\r\n"); got != "VALUE b 0 2\r\nyz\r\nEND\r\n" {
				t.Errorf("get over TCP of a key set over UDP: %q", got)
			}

			// A reply larger than a datagram (memcached: 1400 bytes) comes in parts.
			big := strings.Repeat("0123456789", 500)
			if got := roundTrip(t, tcp, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(big), big), "\r\n"); got != "STORED\r\n" {
				t.Fatalf("set big over TCP: %q", got)
			}
			check(5, "get big\r\n", "VALUE big 0 5000\r\n"+big+"\r\nEND\r\n")
		})
	}
}

// startFeature starts impl with o. When petrel refuses to start because it
// lacks the feature, the test is skipped with a message naming it.
func startFeature(t *testing.T, impl string, o listenOpts, feature string) *server {
	t.Helper()
	if impl == "memcached" {
		return startMemcached(t, o)
	}
	s, err := startServerErr(t, "petrel", petrel(t), petrelServe, o)
	if err != nil {
		msg := err.Error()
		for _, sign := range []string{"flag provided but not defined", "not implemented", "not supported", "unknown flag"} {
			if strings.Contains(msg, sign) {
				skipMissing(t, feature, sign)
			}
		}
		t.Fatalf("starting petrel: %v", err)
	}
	return s
}

// skipMissing skips a test of a petrel feature that does not exist yet.
func skipMissing(t *testing.T, feature, why string) {
	t.Helper()
	t.Skipf("petrel does not implement %s yet (%s)", feature, why)
}

// udpPortBound reports whether some process has the UDP address bound.
func udpPortBound(addr string) bool {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// udpRequest sends req as one datagram with request id id and reassembles
// the reply datagrams in sequence order.
func udpRequest(c net.Conn, id uint16, req string) (string, error) {
	hdr := make([]byte, 8)
	binary.BigEndian.PutUint16(hdr[0:], id)
	binary.BigEndian.PutUint16(hdr[4:], 1) // one datagram
	if _, err := c.Write(append(hdr, req...)); err != nil {
		return "", err
	}
	parts := map[uint16][]byte{}
	total := -1
	buf := make([]byte, 64<<10)
	for total < 0 || len(parts) < total {
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return "", err
		}
		n, err := c.Read(buf)
		if err != nil {
			return "", fmt.Errorf("after %d of %d datagrams: %w", len(parts), total, err)
		}
		if n < 8 {
			return "", fmt.Errorf("datagram of %d bytes has no frame header", n)
		}
		if got := binary.BigEndian.Uint16(buf[0:]); got != id {
			continue // a late reply to an earlier request
		}
		seq, count := binary.BigEndian.Uint16(buf[2:]), int(binary.BigEndian.Uint16(buf[4:]))
		if total >= 0 && count != total {
			return "", fmt.Errorf("datagram %d says %d datagrams, an earlier one %d", seq, count, total)
		}
		total = count
		parts[seq] = bytes.Clone(buf[8:n])
	}
	seqs := make([]int, 0, len(parts))
	for s := range parts {
		seqs = append(seqs, int(s))
	}
	sort.Ints(seqs)
	var out []byte
	for i, s := range seqs {
		if s != i {
			return "", fmt.Errorf("datagram sequence numbers %v are not 0..%d", seqs, total-1)
		}
		out = append(out, parts[uint16(s)]...)
	}
	return string(out), nil
}

// roundTrip writes req and reads until the reply ends with end.
func roundTrip(t *testing.T, c net.Conn, req, end string) string {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(got, []byte(end)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reply to %q: %v after %q", req, err, got)
		}
	}
	return string(got)
}
