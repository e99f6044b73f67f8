package backendtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Dynalite is a dynalite server (a DynamoDB-compatible server from npm)
// on a free loopback port, keeping its tables in a temporary directory so
// that it can be killed and restarted without losing them.
type Dynalite struct {
	Endpoint string // http://127.0.0.1:port
	Port     int

	t    testing.TB
	node string
	cli  string
	path string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
}

// dynaliteCLI finds dynalite's cli.js: $PETREL_DYNALITE, then the cache
// directory scripts/install-deps.sh installs into, then the global
// npm roots.
func dynaliteCLI() string {
	cands := []string{os.Getenv("PETREL_DYNALITE")}
	if d := os.Getenv("PETREL_DEPS_DIR"); d != "" {
		cands = append(cands, filepath.Join(d, "node_modules/dynalite/cli.js"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(h, ".cache/petrel-test/node_modules/dynalite/cli.js"))
	}
	cands = append(cands, "/usr/local/lib/node_modules/dynalite/cli.js", "/usr/lib/node_modules/dynalite/cli.js")
	for _, c := range cands {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// StartDynalite starts dynalite and stops it when the test ends.
func StartDynalite(t testing.TB) *Dynalite {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node (Node.js) not found; dynalite needs it")
	}
	cli := dynaliteCLI()
	if cli == "" {
		Missing(t, "dynalite not installed (npm install dynalite into ~/.cache/petrel-test, or set PETREL_DYNALITE to its cli.js)")
	}
	d := &Dynalite{t: t, node: node, cli: cli, path: t.TempDir(), Port: FreePort(t)}
	d.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", d.Port)
	d.Start()
	t.Cleanup(d.Kill)
	return d
}

// Start starts (or restarts) dynalite on the same port and data directory
// and waits until it accepts connections.
func (d *Dynalite) Start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return
	}
	d.out.Reset()
	cmd := exec.Command(d.node, d.cli, "--host", "127.0.0.1", "--port", fmt.Sprint(d.Port), "--path", d.path,
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	cmd.Stdout, cmd.Stderr = &d.out, &d.out
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("dynalite: start: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done
	if err := waitDial(fmt.Sprintf("127.0.0.1:%d", d.Port), 30*time.Second); err != nil {
		d.t.Fatalf("dynalite: %v\n%s", err, d.out.String())
	}
}

// Kill stops dynalite abruptly; clients then see connection errors.
func (d *Dynalite) Kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}
