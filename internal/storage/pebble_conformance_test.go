package storage_test

import (
	"path/filepath"
	"testing"

	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

func TestPebbleConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) storage.Backend {
		dir := filepath.Join(backendtest.Dir(t), "pebble") // stable across reopens
		p, err := storage.OpenPebble(dir, storage.PebbleOptions{CacheBytes: 1 << 20, MemTableBytes: 1 << 20})
		if err != nil {
			t.Fatalf("OpenPebble: %v", err)
		}
		return p
	})
}
