package test

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mcClient is a minimal text-protocol client for the durability tests: one
// request at a time, replies parsed, every I/O error returned (a killed
// server is the point of those tests, so errors are data, not failures).
type mcClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialMC(s *server) (*mcClient, error) {
	c, err := net.DialTimeout(s.network, s.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &mcClient{c: c, r: bufio.NewReader(c)}, nil
}

func mustDialMC(t testing.TB, s *server) *mcClient {
	t.Helper()
	mc, err := dialMC(s)
	if err != nil {
		t.Fatalf("dial %s: %v", s.name, err)
	}
	t.Cleanup(func() { mc.c.Close() })
	return mc
}

// line sends req and reads one reply line (without \r\n).
func (mc *mcClient) line(req string) (string, error) {
	if err := mc.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return "", err
	}
	if _, err := mc.c.Write([]byte(req)); err != nil {
		return "", err
	}
	l, err := mc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

// value is one item of a get reply.
type value struct {
	data string
	cas  uint64
}

// gets reads keys with gets; absent keys are missing from the map.
func (mc *mcClient) gets(keys ...string) (map[string]value, error) {
	l, err := mc.line("gets " + strings.Join(keys, " ") + "\r\n")
	if err != nil {
		return nil, err
	}
	out := map[string]value{}
	for l != "END" {
		f := strings.Fields(l)
		if len(f) != 5 || f[0] != "VALUE" {
			return nil, fmt.Errorf("gets %v: unexpected line %q", keys, l)
		}
		n, err1 := strconv.Atoi(f[3])
		cas, err2 := strconv.ParseUint(f[4], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("gets %v: bad line %q", keys, l)
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(mc.r, buf); err != nil {
			return nil, err
		}
		out[f[1]] = value{data: string(buf[:n]), cas: cas}
		if l, err = mc.r.ReadString('\n'); err != nil {
			return nil, err
		}
		l = strings.TrimSuffix(l, "\r\n")
	}
	return out, nil
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// stats reads the general stats.
func (mc *mcClient) stats() (map[string]string, error) {
	l, err := mc.line("stats\r\n")
	out := map[string]string{}
	for err == nil && l != "END" {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("stats: unexpected line %q", l)
		}
		out[f[1]] = f[2]
		l, err = mc.r.ReadString('\n')
		l = strings.TrimSuffix(l, "\r\n")
	}
	return out, err
}

// statUint reads one numeric stat or fails the test.
func statUint(t testing.TB, mc *mcClient, name string) uint64 {
	t.Helper()
	st, err := mc.stats()
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	v, err := strconv.ParseUint(st[name], 10, 64)
	if err != nil {
		t.Fatalf("stats %s = %q: %v", name, st[name], err)
	}
	return v
}

// startDurable starts petrel with a data directory, skipping the test when
// this petrel has no durability.
func startDurable(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	o := listenOpts{args: append([]string{"--data-dir", dir}, extra...)}
	return startFeature(t, "petrel", o, "durability (--data-dir)")
}
