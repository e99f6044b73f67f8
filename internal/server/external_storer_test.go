package server

import (
	"strings"
	"testing"

	"petrel/internal/storage"
)

// TestExternalStorerRefusesThroughModes: beside a `petrel storer` (its
// lock held), write-through and read-through are refused at start rather
// than silently served as write-behind without read-through.
func TestExternalStorerRefusesThroughModes(t *testing.T) {
	f := func(mode string, readThrough bool, refused bool) {
		t.Helper()
		_, cfg := besidePetrelStorer(t)
		cfg.Durable.Backend.Mode = mode
		cfg.Durable.Backend.ReadThrough = readThrough
		srv, err := New(cfg)
		if err == nil {
			srv.Shutdown()
		}
		switch {
		case refused && (err == nil || !strings.Contains(err.Error(), "petrel storer")):
			t.Errorf("mode %q, read-through %v: %v; want a refusal naming petrel storer", mode, readThrough, err)
		case !refused && err != nil:
			t.Errorf("mode %q, read-through %v: %v; want a start", mode, readThrough, err)
		}
	}
	f(ModeWriteThrough, false, true)
	f(ModeWriteBehind, true, true)
	f(ModeWriteThrough, true, true)
	f(ModeWriteBehind, false, false)
	f("", false, false)
}

// besidePetrelStorer returns a data directory whose storer lock is held
// until the test ends, as by `petrel storer` in another process, and the
// config of a server on it.
func besidePetrelStorer(t *testing.T) (string, Config) {
	t.Helper()
	dir := t.TempDir()
	lock, err := storage.LockStorer(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Unlock() })
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	cfg.Durable.DataDir = dir
	return dir, cfg
}
