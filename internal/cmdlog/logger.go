package cmdlog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Logger.
type Options struct {
	// Dest is a file path, or udp://host:port or tcp://host:port.
	Dest string
	// Sample logs one request in Sample on each connection; 0 and 1 log all.
	Sample int
	// MaxSize rotates the file once it would grow past this many bytes; 0
	// never rotates. Rotated files are Dest.1 (newest) to Dest.Keep.
	MaxSize int64
	// Keep is how many rotated files are kept; 0 keeps none.
	Keep int
	// HashKeys logs "h:"+FNV-1a 64 of each key instead of the key.
	HashKeys bool
	// RingSize is the bytes of each connection's ring; 0 means DefaultRingSize.
	RingSize int
	// Interval is how often the drainer collects the rings when none asks
	// sooner; 0 means 20ms.
	Interval time.Duration
}

// Stats describe a logger for `cmdlog`, /metrics and the status page.
type Stats struct {
	Dest      string
	Sample    int
	HashKeys  bool
	Since     time.Time
	Lines     uint64 // lines written to the sink
	Drops     uint64 // records refused because a ring was full
	Lost      uint64 // lines the sink failed to take (write errors, no peer)
	Bytes     uint64 // bytes written, headers included
	Rotations uint64
	Rings     int // connections logging now
	LastError string
}

// Logger collects the rings of every logging connection and writes their
// records through one drainer goroutine.
type Logger struct {
	opts  Options
	since time.Time

	mu      sync.Mutex
	rings   []*Ring
	retired uint64 // drops of released rings
	lastErr string

	wakeCh chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	lines, lost, bytes, rotations atomic.Uint64

	sink sink // drainer-only
}

// Open validates o, opens its destination and starts the drainer.
func Open(o Options) (*Logger, error) {
	if o.Dest == "" {
		return nil, errors.New("cmdlog: no destination")
	}
	if o.Sample < 0 || o.MaxSize < 0 || o.Keep < 0 || o.RingSize < 0 {
		return nil, fmt.Errorf("cmdlog: negative setting in %+v", o)
	}
	if o.Sample == 0 {
		o.Sample = 1
	}
	if o.RingSize == 0 {
		o.RingSize = DefaultRingSize
	}
	if o.Interval == 0 {
		o.Interval = 20 * time.Millisecond
	}
	l := &Logger{
		opts:   o,
		since:  time.Now(),
		wakeCh: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	s, err := openSink(o, l)
	if err != nil {
		return nil, err
	}
	l.sink = s
	go l.run()
	return l, nil
}

// Options returns the logger's settings, defaults filled in.
func (l *Logger) Options() Options { return l.opts }

// Sample is the 1-in-N sampling rate.
func (l *Logger) Sample() int { return l.opts.Sample }

// SampleStart is where a new connection's sampling counter starts: a
// random phase, so that sampling 1 in 100 of many short connections still
// logs one request in 100 rather than none.
func (l *Logger) SampleStart() int {
	if l.opts.Sample <= 1 {
		return 0
	}
	return rand.IntN(l.opts.Sample)
}

// NewRing registers a ring for one producer. client names the records that
// carry no address of their own (see ClientAddr).
func (l *Logger) NewRing(client string) *Ring {
	r := newRing(l.opts.RingSize, client, l.wake)
	l.mu.Lock()
	l.rings = append(l.rings, r)
	l.mu.Unlock()
	return r
}

// wake asks the drainer to run now; it never blocks.
func (l *Logger) wake() {
	select {
	case l.wakeCh <- struct{}{}:
	default:
	}
}

// Close stops the drainer after a last collection, and closes the sink.
// Rings still held by producers are abandoned: their later Puts go nowhere.
func (l *Logger) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return l.sink.close()
}

func (l *Logger) run() {
	defer close(l.done)
	t := time.NewTicker(l.opts.Interval)
	defer t.Stop()
	var scratch []byte
	for {
		select {
		case <-l.stop:
			l.collect(&scratch)
			return
		case <-t.C:
		case <-l.wakeCh:
		}
		l.collect(&scratch)
	}
}

// collect drains every ring into the sink and forgets released ones.
func (l *Logger) collect(scratch *[]byte) {
	syncClock()
	l.mu.Lock()
	rings := append([]*Ring(nil), l.rings...)
	l.mu.Unlock()
	var gone []*Ring
	for _, r := range rings {
		// Read done before draining: a ring released before this drain is
		// then drained completely.
		done := r.done.Load()
		*scratch, _ = r.drain(*scratch, func(rec *Record) {
			l.sink.line(rec, r.client)
		})
		if done {
			gone = append(gone, r)
		}
	}
	if err := l.sink.flush(); err != nil {
		l.setErr(err)
	}
	if len(gone) == 0 {
		return
	}
	l.mu.Lock()
	keep := l.rings[:0]
	for _, r := range l.rings {
		if r.done.Load() && contains(gone, r) {
			l.retired += r.drops.Load()
			continue
		}
		keep = append(keep, r)
	}
	clear(l.rings[len(keep):])
	l.rings = keep
	l.mu.Unlock()
}

func contains(rs []*Ring, r *Ring) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func (l *Logger) setErr(err error) {
	l.mu.Lock()
	l.lastErr = err.Error()
	l.mu.Unlock()
}

// Stats returns the logger's counters.
func (l *Logger) Stats() Stats {
	l.mu.Lock()
	drops := l.retired
	for _, r := range l.rings {
		drops += r.drops.Load()
	}
	st := Stats{
		Dest:      l.opts.Dest,
		Sample:    l.opts.Sample,
		HashKeys:  l.opts.HashKeys,
		Since:     l.since,
		Drops:     drops,
		Rings:     len(l.rings),
		LastError: l.lastErr,
	}
	l.mu.Unlock()
	st.Lines = l.lines.Load()
	st.Lost = l.lost.Load()
	st.Bytes = l.bytes.Load()
	st.Rotations = l.rotations.Load()
	return st
}
