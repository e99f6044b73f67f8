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
	"unsafe"
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

// Index tables of at least mapSlotsMin slots are mapped too, so that a
// rehash gives the old table back to the kernel at once instead of leaving
// it to the collector, and so that the heap (and GOMEMLIMIT) does not grow
// with the number of items. Smaller tables stay on the heap: a mapping
// costs at least a page.
var mapSlotsMin = 512 // one 4 KiB page; a variable for tests

// allocSlots returns a zeroed table of n slots and whether it is mapped.
func allocSlots(n int) ([]uint64, bool) {
	if n >= mapSlotsMin {
		b, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
		if err == nil {
			return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), n), true
		}
		// Out of address space or map count: the heap will do.
	}
	return make([]uint64, n), false
}

// freeSlots gives back a table from allocSlots.
func freeSlots(s []uint64, mapped bool) {
	if mapped && len(s) > 0 {
		_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*8))
	}
}
