package server

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNewFailureStopsDurable: a New that fails after the durable state is
// open (here on the command log) closes it: the journal watcher stops and
// the data directory's locks are free for the next start.
func TestNewFailureStopsDurable(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = dir
	bad := cfg
	bad.Cmdlog.Path = filepath.Join(dir, "missing", "sub", "cmd.log")
	watchers := func() int {
		buf := make([]byte, 8<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "server.(*Server).watchJournal(")
	}
	before := watchers()
	if srv, err := New(bad); err == nil {
		srv.Shutdown()
		t.Fatal("New with a command log in a missing directory: started")
	}
	if n := watchers(); n != before {
		t.Fatalf("%d journal watchers run after New failed, %d before", n, before)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("start after the failed one: %v", err)
	}
	srv.Shutdown()
}
