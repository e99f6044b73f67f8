package test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Debian's interpreter and its pymemcache package (python3-pymemcache,
// python3-pytest); a python3 earlier on PATH (pyenv, venv) lacks them.
const (
	debianPython   = "/usr/bin/python3"
	pymemcacheDir  = "/usr/lib/python3/dist-packages/pymemcache"
	pymemcacheTest = pymemcacheDir + "/test/test_integration.py"
)

// TestPymemcache runs pymemcache's own integration suite, which exercises
// the client classes (Client, PooledClient, HashClient) over the text
// protocol. The TLS test needs a TLS listener and is deselected. So is
// test_misc: its only command is a noreply flush_all, sent just before its
// client's socket closes, and nothing orders that flush against the next
// test's set on a new connection. When the server reaches the old
// connection last (a loaded CI machine), the next test's item is flushed
// and test_serialization_deserialization fails, against memcached as well
// as Petrel. Every other test ends on a command that waits for its reply.
func TestPymemcache(t *testing.T) {
	needFile(t, debianPython, "python3")
	needFile(t, pymemcacheTest, "python3-pymemcache")
	needFile(t, "/usr/lib/python3/dist-packages/pytest", "python3-pytest")
	for _, impl := range []string{"memcached", "petrel"} {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			var s *server
			if impl == "petrel" {
				s = startPetrel(t, listenOpts{})
			} else {
				s = startMemcached(t, listenOpts{})
			}
			runPymemcache(t, s)
		})
	}
}

var pytestFailed = regexp.MustCompile(`(?m)^(FAILED|ERROR) .*$`)

func runPymemcache(t *testing.T, s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The file goes first: pytest finds the conftest.py that defines
	// --server and --port from the paths before the first unknown option.
	cmd := exec.CommandContext(ctx, debianPython, "-m", "pytest", pymemcacheTest,
		"-p", "no:cacheprovider", // write no .pytest_cache into /usr
		"-o", "markers=integration", // the suite uses the mark without registering it
		"-q", "-rfE",
		"-m", "integration", "-k", "not tls and not test_misc",
		"--server", "127.0.0.1", "--port", s.port())
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"PYTHONDONTWRITEBYTECODE=1",        // no __pycache__ in /usr either
		"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1", // only the plugins the suite needs
	)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), " passed") {
		failed := pytestFailed.FindAllString(string(out), -1)
		t.Errorf("pymemcache integration suite against %s failed (%v); %d failing:\n%s\n--- output:\n%s",
			s.name, err, len(failed), strings.Join(failed, "\n"), out)
	}
}
