package test

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

const memccapableBin = "/usr/bin/memccapable"

// memccapableTests are the checks memccapable (libmemcached-tools 1.1)
// reports against memcached 1.6.18, all [pass]. Listing them catches a run
// that stops early, e.g. because the server closed the connection.
var memccapableTests = map[string][]string{
	"-a": {
		"version", "quit", "verbosity", "set", "set noreply", "get", "gets", "mget",
		"flush", "flush noreply", "add", "add noreply", "replace", "replace noreply",
		"cas", "cas noreply", "delete", "delete noreply", "incr", "incr noreply",
		"decr", "decr noreply", "append", "append noreply", "prepend",
		"prepend noreply", "stat",
	},
	"-b": {
		"noop", "quit", "quitq", "set", "setq", "flush", "flushq", "add", "addq",
		"replace", "replaceq", "delete", "deleteq", "get", "getq", "getk", "getkq",
		"incr", "incrq", "decr", "decrq", "version", "append", "appendq", "prepend",
		"prependq", "stat",
	},
}

// TestMemccapable runs libmemcached's conformance tester in ascii (-a) and
// binary (-b) mode. Each run gets a fresh server since memccapable flushes
// it. memcached is run too, which checks the harness and the expectations.
func TestMemccapable(t *testing.T) {
	needFile(t, memccapableBin, "libmemcached-tools")
	for _, mode := range []struct{ name, flag, prefix string }{
		{"ascii", "-a", "ascii "},
		{"binary", "-b", "binary "},
	} {
		for _, impl := range []string{"memcached", "petrel"} {
			t.Run(mode.name+"/"+impl, func(t *testing.T) {
				t.Parallel()
				var s *server
				if impl == "petrel" {
					s = startPetrel(t, listenOpts{})
				} else {
					s = startMemcached(t, listenOpts{})
				}
				runMemccapable(t, s, mode.flag, mode.prefix)
			})
		}
	}
}

var memccapableLine = regexp.MustCompile(`^(.*?)\s+\[(\w+)\]\s*$`)

func runMemccapable(t *testing.T, s *server, flag, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, memccapableBin, "-h", "127.0.0.1", "-p", s.port(), "-t", "10", flag)
	out, err := cmd.CombinedOutput()
	results := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if m := memccapableLine.FindStringSubmatch(sc.Text()); m != nil {
			results[strings.TrimPrefix(m[1], prefix)] = m[2]
		}
	}
	var failed []string
	for _, name := range memccapableTests[flag] {
		switch r := results[name]; r {
		case "pass":
		case "":
			failed = append(failed, name+" (not run)")
		default:
			failed = append(failed, name+" ("+r+")")
		}
	}
	if len(failed) > 0 || err != nil || !strings.Contains(string(out), "All tests passed") {
		t.Errorf("memccapable %s against %s: %d of %d checks failed: %s (exit: %v)\n--- output:\n%s",
			flag, s.name, len(failed), len(memccapableTests[flag]), strings.Join(failed, ", "), err, out)
	}
}
