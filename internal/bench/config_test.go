package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "w.toml")
	err := os.WriteFile(file, []byte(`name = "w"
conns = 7
duration = "3s"
value = "etc-value"
ratio = "30:1"
zipf = 1.0
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f := func(args string, check func(c Config) bool, wantErr string) {
		t.Helper()
		c, err := ParseArgs("bench", strings.Fields(args))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%q: error %v, want %q", args, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !check(c) {
			t.Errorf("%q: got %+v", args, c)
		}
	}
	f("", func(c Config) bool { return c.Conns == 50 && c.Duration == 10*time.Second && c.getShare > 0.9 }, "")
	f("-config "+file, func(c Config) bool {
		return c.Name == "w" && c.Conns == 7 && c.Duration == 3*time.Second && c.Zipf == 1 &&
			c.valDist == ETCValue && c.setShare > 0.03 && c.setShare < 0.033
	}, "")
	// Flags given on the command line win over the file, wherever they stand.
	f("-conns 3 -config "+file+" -depth 4", func(c Config) bool { return c.Conns == 3 && c.Depth == 4 && c.Name == "w" }, "")
	f("-delete 0.1 -incr 0.1 -ratio 1:1", func(c Config) bool { return c.getShare == 0.4 && c.setShare == 0.4 }, "")
	f("-protocol binary", nil, "protocol")
	f("-ratio 10", nil, "ratio")
	f("-value gauss:1", nil, "value")
	f("-delete 0.8 -incr 0.5", nil, "shares")
	f("-verify -keys 10 -conns 20", nil, "keys >= conns")
	f("-duration 0", nil, "need a")
	f("-config "+filepath.Join(dir, "missing.toml"), nil, "missing.toml")
}

func TestParseArgsUnknownKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "w.toml")
	if err := os.WriteFile(file, []byte("connz = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseArgs("bench", []string{"-config", file}); err == nil || !strings.Contains(err.Error(), "connz") {
		t.Errorf("unknown key accepted: %v", err)
	}
}

// The workload files shipped in bench/workloads must all parse.
func TestShippedWorkloads(t *testing.T) {
	files, err := filepath.Glob("../../bench/workloads/*.toml")
	if err != nil || len(files) == 0 {
		t.Skipf("no workload files found: %v", err)
	}
	for _, file := range files {
		c, err := ParseArgs("bench", []string{"-config", file})
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if c.Name+".toml" != filepath.Base(file) {
			t.Errorf("%s: name %q does not match the file", file, c.Name)
		}
	}
}
