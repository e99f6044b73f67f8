package server

import (
	"fmt"
	"time"

	"petrel/internal/storage"
)

// Durability modes (--durability).
const (
	DurabilitySync  = "sync"  // acknowledge once the journal group is fdatasync'ed
	DurabilityAsync = "async" // acknowledge once it is written to the OS; fdatasync every SyncInterval
	DurabilityOff   = "off"   // no journal: plain memcached
)

// DurableConfig is how the server keeps its data (docs/durability.md).
type DurableConfig struct {
	DataDir string // --data-dir: journal in DataDir/journal, storage in DataDir/pebble
	// Mode is sync, async or off; "" picks sync with a data directory and
	// off without one.
	Mode               string
	JournalSegmentSize int64         // --journal-segment-size; 0 is the journal's default (64 MiB)
	JournalMaxDelay    time.Duration // --journal-max-delay: wait this long for a group to fill
	SyncInterval       time.Duration // --journal-sync-interval (async); 0 is 1s
	Repair             bool          // --repair: cut the journal at mid-journal corruption instead of refusing to start
	// JournalRetry is how often a failed journal is retried (recover.go,
	// resumeJournal); 0 never retries. DefaultConfig sets 5s.
	JournalRetry time.Duration
	// AcceptDuringWarmup opens the listeners while the memory tier is
	// still being loaded: hits are served, misses wait for the load
	// (recover.go).
	AcceptDuringWarmup bool
	// Backend is the storage backend the journal is applied to, and how
	// the server uses it (backend_config.go).
	Backend BackendConfig
}

// mode resolves the default.
func (d *DurableConfig) mode() string {
	if d.Mode == "" {
		if d.DataDir != "" {
			return DurabilitySync
		}
		return DurabilityOff
	}
	return d.Mode
}

// Enabled reports whether a journal is kept.
func (d *DurableConfig) Enabled() bool { return d.mode() != DurabilityOff }

// JournalDir is where the journal's segment files live.
func (d *DurableConfig) JournalDir() string { return storage.JournalDir(d.DataDir) }

func (d *DurableConfig) validate() error {
	switch d.Mode {
	case "", DurabilityOff:
	case DurabilitySync, DurabilityAsync:
		if d.DataDir == "" {
			return fmt.Errorf("durability %s needs a data directory (--data-dir)", d.Mode)
		}
	default:
		return fmt.Errorf("durability %q: want sync, async or off", d.Mode)
	}
	switch {
	case d.JournalSegmentSize < 0:
		return fmt.Errorf("journal segment size must not be negative, got %d", d.JournalSegmentSize)
	case d.JournalSegmentSize > 0 && d.JournalSegmentSize < 64<<10:
		return fmt.Errorf("journal segment size must be at least 64k, got %d", d.JournalSegmentSize)
	case d.JournalMaxDelay < 0:
		return fmt.Errorf("journal max delay must not be negative, got %v", d.JournalMaxDelay)
	case d.JournalRetry < 0:
		return fmt.Errorf("journal retry interval must not be negative, got %v", d.JournalRetry)
	case d.SyncInterval < 0:
		return fmt.Errorf("journal sync interval must not be negative, got %v", d.SyncInterval)
	}
	return d.Backend.validate(d.Enabled())
}
