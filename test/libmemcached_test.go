package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLibmemcachedTools drives the server with libmemcached's command line
// tools (memccp, memccat, memcexist, memctouch, memcrm, memcflush), in the
// text and the binary protocol, and requires the same outputs and exit
// statuses as memcached gives.
func TestLibmemcachedTools(t *testing.T) {
	needFile(t, "/usr/bin/memccp", "libmemcached-tools")
	dir := t.TempDir()
	file := filepath.Join(dir, "hello.txt")
	if err := os.WriteFile(file, []byte("hello from libmemcached\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := [][]string{
		{"memccat", "hello.txt"},
		{"memccp", file},
		{"memccat", "hello.txt"},
		{"memcexist", "hello.txt"},
		{"memctouch", "-e", "100", "hello.txt"},
		{"memcrm", "hello.txt"},
		{"memcexist", "hello.txt"},
		{"memccp", file},
		{"memcflush"},
		{"memccat", "hello.txt"},
	}
	for _, proto := range []string{"text", "binary"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			run := func(s *server) string {
				var out strings.Builder
				for _, step := range script {
					args := []string{"-s", s.addr}
					if proto == "binary" {
						args = append(args, "-b")
					}
					args = append(args, step[1:]...)
					fmt.Fprintf(&out, "$ %s %s\n%s", step[0], strings.Join(step[1:], " "), runTool(t, step[0], args))
				}
				return out.String()
			}
			want := run(startMemcached(t, listenOpts{}))
			got := run(startPetrel(t, listenOpts{}))
			if got != want {
				t.Errorf("libmemcached tools over %s:\n--- memcached:\n%s--- petrel:\n%s", proto, want, got)
			}
		})
	}
}

// runTool runs one tool and returns its output and exit status as text.
func runTool(t *testing.T, name string, args []string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/"+name, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return fmt.Sprintf("%s[exit 0]\n", out)
	case errors.As(err, &exit):
		return fmt.Sprintf("%s[exit %d]\n", out, exit.ExitCode())
	}
	t.Fatalf("%s: %v", name, err)
	return ""
}
