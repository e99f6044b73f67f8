package test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDifferential replays every case of testdata/diff/*.txt against a
// fresh memcached and a fresh petrel and requires the same reply bytes, CAS
// values, statistics and the version string masked (see normalizer).
func TestDifferential(t *testing.T) {
	files, err := filepath.Glob("testdata/diff/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files in testdata/diff (%v)", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			t.Parallel()
			f, err := parseDiffFile(path)
			if err != nil {
				t.Fatal(err)
			}
			mc := startMemcached(t, listenOpts{args: f.args})
			var pt *server
			if os.Getenv("PETREL_DIFF_SELFCHECK") == "1" {
				// A case author's check that a case is deterministic:
				// a second memcached stands in for petrel.
				pt = startMemcached(t, listenOpts{args: f.args})
			} else {
				pt = startPetrel(t, listenOpts{args: f.args})
			}
			timeouts := 0 // cases where petrel neither answered nor closed
			for _, c := range f.cases {
				if timeouts == maxTimeouts {
					t.Errorf("petrel timed out in %d cases; skipping the rest of %s", timeouts, path)
					break
				}
				t.Run(c.name, func(t *testing.T) {
					want, err := runDiffCase(mc, c, !f.noFlush)
					if err != nil {
						t.Fatalf("%s:%d: against memcached: %v", c.file, c.line, err)
					}
					if os.Getenv("PETREL_DIFF_SHOW") == "1" {
						t.Logf("memcached:\n%s", want)
					}
					got, err := runDiffCase(pt, c, !f.noFlush)
					if err != nil {
						t.Fatalf("%s:%d: against petrel: %v", c.file, c.line, err)
					}
					if strings.Contains(got, "<timeout>") && !strings.Contains(want, "<timeout>") {
						timeouts++
					}
					if got != want {
						t.Errorf("%s:%d: replies differ\n--- memcached:\n%s--- petrel:\n%s--- first difference: %s",
							c.file, c.line, want, got, firstDiff(want, got))
					}
				})
			}
		})
	}
}

// ioTimeout bounds one case's conversation; a server that never answers or
// never closes shows as a <timeout> in its reply. After maxTimeouts such
// cases a file stops, so that a server that hangs cannot stall the suite.
const (
	ioTimeout   = 10 * time.Second
	maxTimeouts = 3
)

// runDiffCase runs c on a new connection to s, after a flush_all if flush,
// and returns the normalized reply.
func runDiffCase(s *server, c *diffCase, flush bool) (string, error) {
	if flush {
		if err := flushAll(s); err != nil {
			return "", err
		}
	}
	conn, err := net.DialTimeout(s.network, s.addr, ioTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return "", err
	}
	n := &normalizer{casIDs: map[string]int{}}
	binaryConn := isBinary(c)
	var out strings.Builder
	for i, round := range c.rounds {
		var req []byte
		for _, st := range round {
			b, err := st.bytes(n.lastCAS)
			if err != nil {
				return "", err
			}
			req = append(req, b...)
		}
		var reply []byte
		if i == len(c.rounds)-1 {
			reply, err = finalRound(conn, req)
		} else {
			reply, err = syncRound(conn, req, binaryConn)
		}
		out.WriteString(n.render(reply))
		if err != nil {
			// The connection is gone or stuck: later rounds cannot run.
			fmt.Fprintf(&out, "<%v>\n", err)
			break
		}
		if i < len(c.rounds)-1 {
			out.WriteString("--- sync\n")
		}
	}
	res := out.String()
	for _, re := range c.masks {
		res = re.ReplaceAllString(res, "<masked>")
	}
	return res, nil
}

// finalRound sends req, half-closes, and reads until the server closes.
func finalRound(conn net.Conn, req []byte) ([]byte, error) {
	if _, err := conn.Write(req); err != nil {
		return nil, describe(err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return nil, describe(err)
		}
	}
	b, err := io.ReadAll(conn)
	return b, describe(err)
}

// syncRound sends req followed by a no-op, and reads up to the no-op's reply.
func syncRound(conn net.Conn, req []byte, binaryConn bool) ([]byte, error) {
	noop, noopReply := []byte("mn\r\n"), []byte("MN\r\n")
	done := func(b []byte) bool { return bytes.HasSuffix(b, noopReply) }
	if binaryConn {
		noop = make([]byte, 24)
		noop[0], noop[1] = 0x80, binOps["noop"]
		binary.BigEndian.PutUint32(noop[12:], syncOpaque)
		done = func(b []byte) bool {
			if len(b) < 24 {
				return false
			}
			h := b[len(b)-24:]
			return h[0] == 0x81 && h[1] == binOps["noop"] && binary.BigEndian.Uint32(h[12:]) == syncOpaque
		}
	}
	if _, err := conn.Write(append(req, noop...)); err != nil {
		return nil, describe(err)
	}
	var b []byte
	buf := make([]byte, 64<<10)
	for !done(b) {
		k, err := conn.Read(buf)
		b = append(b, buf[:k]...)
		if errors.Is(err, io.EOF) {
			return b, errors.New("connection closed")
		}
		if err != nil {
			return b, describe(err)
		}
	}
	if binaryConn {
		return b[:len(b)-24], nil
	}
	return b[:len(b)-len(noopReply)], nil
}

const syncOpaque = 0x5e11c0de

// describe turns I/O errors into stable words for the reply text: the
// exact error differs between runs (ports), what happened does not.
func describe(err error) error {
	var ne net.Error
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("timeout")
	case strings.Contains(err.Error(), "reset by peer"):
		return errors.New("connection reset")
	case strings.Contains(err.Error(), "broken pipe"):
		return errors.New("broken pipe")
	}
	return err
}

func isBinary(c *diffCase) bool {
	for _, r := range c.rounds {
		for _, st := range r {
			if st.bin != nil {
				return true
			}
			if len(st.raw) > 0 {
				return st.raw[0] == 0x80
			}
		}
	}
	return false
}

func (st step) bytes(lastCAS uint64) ([]byte, error) {
	if st.bin != nil {
		return st.bin.encode(lastCAS)
	}
	return bytes.ReplaceAll(st.raw, []byte("$cas"), []byte(strconv.FormatUint(lastCAS, 10))), nil
}

// flushAll empties the server between cases.
func flushAll(s *server) error {
	conn, err := net.DialTimeout(s.network, s.addr, ioTimeout)
	if err != nil {
		return fmt.Errorf("flush_all: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("flush_all\r\n")); err != nil {
		return fmt.Errorf("flush_all: %w", err)
	}
	reply := make([]byte, 4)
	if _, err := io.ReadFull(conn, reply); err != nil || string(reply) != "OK\r\n" {
		return fmt.Errorf("flush_all: got %q, %v", reply, err)
	}
	return nil
}

// firstDiff describes where two renderings start to differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: memcached %q, petrel %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("memcached has %d lines, petrel %d", len(al), len(bl))
}
