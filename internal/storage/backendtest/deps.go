package backendtest

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Missing skips t because an external dependency is not installed, or
// fails it when PETREL_REQUIRE_DEPS=1 (set by `make test`, so CI cannot
// pass by skipping). scripts/install-deps.sh installs them.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (run scripts/install-deps.sh)"
	if os.Getenv("PETREL_REQUIRE_DEPS") == "1" {
		t.Fatalf("required dependency missing: %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitDial waits until addr accepts connections or the deadline passes.
func waitDial(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %v: %w", addr, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var names sync.Map // *testing.T → string

// Name returns a short identifier unique to t, stable across calls with the
// same t: a table name for backends opened more than once in one test.
func Name(t testing.TB) string {
	if v, ok := names.Load(t); ok {
		return v.(string)
	}
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 40 {
		s = s[len(s)-40:]
	}
	s = fmt.Sprintf("t%s_%x", s, time.Now().UnixNano()&0xffffff)
	v, _ := names.LoadOrStore(t, s)
	t.Cleanup(func() { names.Delete(t) })
	return v.(string)
}

var dirs sync.Map // *testing.T → string

// Dir returns a temporary directory for t, the same one on every call with
// the same t: a data directory for backends opened more than once.
func Dir(t testing.TB) string {
	if v, ok := dirs.Load(t); ok {
		return v.(string)
	}
	v, _ := dirs.LoadOrStore(t, t.TempDir())
	t.Cleanup(func() { dirs.Delete(t) })
	return v.(string)
}
