// Package stats counts what the server does without a shared lock on the
// request path, in the manner of Twemcache's per-thread stats: every
// connection owns a Worker whose counters only it writes (atomically, so a
// reader never sees a torn value), and readers sum all workers on demand.
package stats

import (
	"sync"
	"sync/atomic"
)

// Counter names one per-worker counter.
type Counter int

// The counters; names match memcached's `stats` fields where one exists.
const (
	CmdGet Counter = iota
	CmdSet
	CmdFlush
	CmdTouch
	CmdMeta
	GetHits
	GetMisses
	GetExpired
	GetFlushed
	DeleteHits
	DeleteMisses
	IncrHits
	IncrMisses
	DecrHits
	DecrMisses
	CasHits
	CasMisses
	CasBadval
	TouchHits
	TouchMisses
	BytesRead
	BytesWritten
	ProtocolErrors // malformed requests answered with ERROR/CLIENT_ERROR
	StoreTooLarge  // stores refused because the item exceeds -I
	StoreNoMemory  // stores refused for lack of memory (-M, or eviction failed)
	NumCounters
)

var counterNames = [NumCounters]string{
	"cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta",
	"get_hits", "get_misses", "get_expired", "get_flushed",
	"delete_hits", "delete_misses", "incr_hits", "incr_misses",
	"decr_hits", "decr_misses", "cas_hits", "cas_misses", "cas_badval",
	"touch_hits", "touch_misses", "bytes_read", "bytes_written",
	"protocol_errors", "store_too_large", "store_no_memory",
}

// Name is the counter's memcached `stats` name.
func (c Counter) Name() string { return counterNames[c] }

// Load returns the current value of counter c (for tests and per-worker views).
func (w *Worker) Load(c Counter) uint64 { return w.c[c].Load() }

// Worker holds one writer's counters. The padding keeps two workers'
// counters off one cache line.
type Worker struct {
	c [NumCounters]atomic.Uint64
	_ [64]byte
}

// Inc adds one to counter c.
func (w *Worker) Inc(c Counter) { w.c[c].Add(1) }

// Add adds n to counter c.
func (w *Worker) Add(c Counter, n uint64) { w.c[c].Add(n) }

// Registry is the set of workers, live and retired.
type Registry struct {
	mu      sync.Mutex
	workers map[*Worker]struct{}
	retired [NumCounters]uint64 // sums of workers that have gone away
	base    [NumCounters]uint64 // subtracted after `stats reset`
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{workers: make(map[*Worker]struct{})} }

// NewWorker registers and returns a fresh worker.
func (r *Registry) NewWorker() *Worker {
	w := new(Worker)
	r.mu.Lock()
	r.workers[w] = struct{}{}
	r.mu.Unlock()
	return w
}

// Retire folds a worker's counts into the registry and forgets it.
func (r *Registry) Retire(w *Worker) {
	r.mu.Lock()
	for i := range w.c {
		r.retired[i] += w.c[i].Load()
	}
	delete(r.workers, w)
	r.mu.Unlock()
}

// Snapshot sums every worker, minus what `stats reset` cleared.
func (r *Registry) Snapshot() (s [NumCounters]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s = r.sumLocked()
	for i := range s {
		s[i] -= r.base[i]
	}
	return s
}

// Totals sums every worker since the registry was made, ignoring `stats
// reset`: monotonic counters for Prometheus, which must never go down.
func (r *Registry) Totals() [NumCounters]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sumLocked()
}

// Reset makes later snapshots count from now (memcached `stats reset`).
func (r *Registry) Reset() {
	r.mu.Lock()
	r.base = r.sumLocked()
	r.mu.Unlock()
}

func (r *Registry) sumLocked() (s [NumCounters]uint64) {
	s = r.retired
	for w := range r.workers {
		for i := range w.c {
			s[i] += w.c[i].Load()
		}
	}
	return s
}
