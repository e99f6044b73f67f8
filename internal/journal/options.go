package journal

import (
	"errors"
	"time"
)

// Mode is when the journal acknowledges.
type Mode uint8

const (
	// ModeSync acknowledges a group once it is written and fdatasync'ed:
	// an acknowledged write survives power loss.
	ModeSync Mode = iota
	// ModeAsync acknowledges a group once it is written to the operating
	// system and fdatasyncs every SyncInterval: a process crash loses
	// nothing, a power loss up to SyncInterval of writes.
	ModeAsync
)

func (m Mode) String() string {
	if m == ModeAsync {
		return "async"
	}
	return "sync"
}

// Errors.
var (
	ErrFailed    = errors.New("journal failed")
	ErrClosed    = errors.New("journal closed")
	ErrTruncated = errors.New("journal: sequence already truncated")
)

// Options configure a local journal. Zero values take the defaults.
type Options struct {
	Dir          string
	Mode         Mode
	SegmentSize  int64         // roll to a new file past this size; default 64 MiB
	SyncInterval time.Duration // ModeAsync; default 1s
	// MaxGroupBytes bounds one group (one write, one fsync); default 1 MiB.
	// A single larger record still makes a group of its own.
	MaxGroupBytes int
	// MaxPendingBytes bounds the bytes appended but not yet acknowledged;
	// Append blocks beyond it (back-pressure). Default 8 × MaxGroupBytes.
	MaxPendingBytes int
	// MaxDelay, when set, makes the writer wait this long for a group to
	// fill before writing it. By default it adds no delay: a group is
	// whatever arrived during the previous fsync.
	MaxDelay time.Duration
	// Repair makes Open truncate at mid-journal corruption (dropping what
	// follows) instead of refusing to open, and lets Restart drop the
	// journal's records to start after what its consumer holds.
	Repair bool
	// Logf receives recovery warnings; nil discards them (they are also
	// in Recovery()).
	Logf func(format string, args ...any)
	// FS is the file layer; default OSFS.
	FS FS
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return errors.New("journal: Options.Dir is empty")
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	if o.MaxGroupBytes <= 0 {
		o.MaxGroupBytes = 1 << 20
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = 8 * o.MaxGroupBytes
	}
	if o.MaxPendingBytes < o.MaxGroupBytes {
		o.MaxPendingBytes = o.MaxGroupBytes
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

// Stats are the journal's counters.
type Stats struct {
	Mode         Mode
	FirstSeq     uint64 // oldest record kept
	NextSeq      uint64 // what the next Append gets
	DurableSeq   uint64 // acknowledged
	SyncedSeq    uint64 // fdatasync'ed (= DurableSeq in ModeSync)
	Records      uint64 // acknowledged since Open
	Groups       uint64 // writes since Open
	Bytes        uint64 // bytes written since Open
	Syncs        uint64
	SyncNanos    uint64 // total time in fdatasync
	SyncMaxNanos uint64
	Stalls       uint64 // Appends that waited for back-pressure
	PendingBytes int
	Segments     int
	SizeOnDisk   int64 // bytes in segment files
	Failed       bool
}

// RecordsPerGroup is the average group size: how well commits are shared.
func (s Stats) RecordsPerGroup() float64 {
	if s.Groups == 0 {
		return 0
	}
	return float64(s.Records) / float64(s.Groups)
}

// AvgSync is the mean fdatasync latency.
func (s Stats) AvgSync() time.Duration {
	if s.Syncs == 0 {
		return 0
	}
	return time.Duration(s.SyncNanos / s.Syncs)
}
