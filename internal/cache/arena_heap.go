//go:build race || !unix

package cache

// Segment memory on the Go heap, one []byte per segment allocated when the
// segment is first used. Used under the race detector, which checks only
// memory the Go runtime allocated (see arena_mmap.go), and where there is
// no mmap.

const offHeap = false

type arena struct{}

func newArena(segs, segSize int) (*arena, error) { return &arena{}, nil }

func (a *arena) segment(i, segSize int) []byte { return make([]byte, segSize) }

func (a *arena) release() error { return nil }

func allocSlots(n int) ([]uint64, bool) { return make([]uint64, n), false }

func freeSlots(s []uint64, mapped bool) {}
