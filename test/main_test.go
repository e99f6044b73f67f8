package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds the petrel binary built for this run.
var binDir string

var (
	buildOnce sync.Once
	petrelBin string // set by the first buildPetrel
	buildErr  error
)

// memcachedBin is the reference server the differential tests compare with.
const memcachedBin = "/usr/bin/memcached"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "petrel-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	return m.Run()
}

// petrel returns the petrel binary, building it on first use. Tests that
// only need memcached thus run even while the tree does not build.
func petrel(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out := filepath.Join(binDir, "petrel")
		if buildErr = buildPetrel(out); buildErr == nil {
			petrelBin = out
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return petrelBin
}

// buildPetrel compiles cmd/petrel once per test run. Under `go test -race`
// the server is built with -race as well, so races in the server surface in
// its stderr, which the process helper checks.
func buildPetrel(out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building petrel: %w", err)
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "petrel/cmd/petrel")
	cmd := exec.Command(gobin, args...)
	cmd.Dir = ".." // the module root; go test runs in the package directory
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, b)
	}
	return nil
}

// requireDeps reports whether missing external programs must fail the test
// instead of skipping it. `make test` sets PETREL_REQUIRE_DEPS=1 after
// installing them, so in CI nothing passes by being skipped.
func requireDeps() bool { return os.Getenv("PETREL_REQUIRE_DEPS") == "1" }

// needFile skips (or, with PETREL_REQUIRE_DEPS=1, fails) the test when an
// external program is not installed.
func needFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s not found; install Debian's %s (make deps)", path, pkg)
	if requireDeps() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
