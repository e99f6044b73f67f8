//go:build unix && !race

package cache

// Segment memory outside the Go heap. The whole memory limit is reserved
// with one anonymous private mapping (MAP_NORESERVE: no swap is promised for
// it); the kernel supplies a page when a segment first writes to it, so an
// unused -m costs address space only. The garbage collector neither scans
// nor counts this memory, so GOGC's doubling of the heap target no longer
// applies to the items, and GOMEMLIMIT (which does not count mmap memory)
// need only cover the index and the buffers (internal/server ApplyRuntime).
//
// Under the race detector the heap variant (arena_heap.go) is used instead:
// the detector ignores memory it did not allocate, and it should keep
// checking every access to item memory.

import (
	"fmt"
	"sync"
	"syscall"
)

// offHeap says whether segments live outside the Go heap.
const offHeap = true

type arena struct {
	mu  sync.Mutex
	mem []byte // nil once released
}

func newArena(segs, segSize int) (*arena, error) {
	mem, err := syscall.Mmap(-1, 0, segs*segSize, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("cache: reserving %d bytes of segment memory: %w", segs*segSize, err)
	}
	return &arena{mem: mem}, nil
}

// segment returns the memory of segment i.
func (a *arena) segment(i, segSize int) []byte {
	return a.mem[i*segSize : (i+1)*segSize : (i+1)*segSize]
}

// release unmaps the memory; later calls do nothing.
func (a *arena) release() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mem == nil {
		return nil
	}
	err := syscall.Munmap(a.mem)
	a.mem = nil
	if err != nil {
		return fmt.Errorf("cache: unmapping segment memory: %w", err)
	}
	return nil
}
