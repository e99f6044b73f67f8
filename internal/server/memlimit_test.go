package server

import "testing"

func TestMemoryLimit(t *testing.T) {
	f := func(items int64, offHeap bool, want int64) {
		t.Helper()
		if got := memoryLimit(items, offHeap); got != want {
			t.Errorf("memoryLimit(%d MiB, offHeap %v) = %d MiB, want %d MiB", items>>20, offHeap, got>>20, want>>20)
		}
	}
	f(64<<20, true, 68<<20)
	f(1024<<20, true, 128<<20) // the heap's buffers only
	f(1024<<20, false, 1280<<20)
	f(0, true, 64<<20)
}
