package server

// The storage backend's settings (issue #5; docs/backends.md): which
// backend the storer applies the journal to, whether a write's reply waits
// for the backend (write-through) or only for the journal (write-behind),
// and whether a miss in memory reads the backend (read-through).

import (
	"fmt"
	"time"
)

// Backends (--backend).
const (
	BackendPebble   = "pebble"   // embedded, in DIR/pebble (the default)
	BackendPostgres = "postgres" // a PostgreSQL table
	BackendDynamoDB = "dynamodb" // a DynamoDB table
)

// Backend modes (--backend-mode).
const (
	ModeWriteBehind  = "write-behind"  // acknowledge once the journal is durable
	ModeWriteThrough = "write-through" // acknowledge once the backend has applied the write
)

// BackendConfig chooses and configures the storage backend. It needs a
// journal (--data-dir): the journal is what the storer applies, and what
// absorbs a backlog while the backend is slow or down.
type BackendConfig struct {
	Kind           string // pebble (default), postgres or dynamodb
	PostgresDSN    string // libpq DSN or URL; "" = the PG* environment variables
	PostgresTable  string // default petrel_items
	DynamoTable    string // default petrel
	DynamoRegion   string // "" = the AWS config chain
	DynamoEndpoint string // e.g. http://127.0.0.1:8000 for dynalite
	Mode           string // write-behind (default) or write-through
	ReadThrough    bool   // a miss in memory reads the backend
	// NegativeTTL caches a read-through's "not in the backend" for this
	// long (0: never; every miss reads the backend).
	NegativeTTL time.Duration
	// BacklogLimit is how many bytes of acknowledged journal the backend
	// may lag behind before mutations get SERVER_ERROR (0: no limit).
	BacklogLimit int64
	// ReadThroughWait bounds how long a read-through waits for the storer
	// to apply the journal up to the miss, and for the backend's answer;
	// beyond it the miss is served as a miss (default 2s).
	ReadThroughWait time.Duration
	// BatchDelay is how long the storer lets a partial batch gather once
	// it has caught up with the journal (write-behind; write-through and
	// read-through waits never wait for it). 0 takes the backend's
	// default: 2 ms for Pebble, 20 ms for a database, whose per-batch
	// cost (a transaction, a round trip) is larger and whose batches
	// fold repeated writes of a key into one.
	BatchDelay time.Duration
	// Timeout is the deadline of each backend call the storer makes (one
	// that passes it is retried and counted as a "timeout"), and how long
	// a write-through reply waits for the backend before its connection
	// is closed unacknowledged (the write stays in the journal and is
	// applied later). 0 takes 30s.
	Timeout time.Duration
}

const defaultBackendTimeout = 30 * time.Second

func (b *BackendConfig) timeout() time.Duration {
	if b.Timeout > 0 {
		return b.Timeout
	}
	return defaultBackendTimeout
}

// Storer batch defaults (backend_config.go's BatchDelay). A database gets
// longer and larger batches than the embedded store: each Apply is a
// transaction or a set of requests, so fewer, larger ones cost it less,
// and a backlog drains in batches that fold a hot key's writes into one.
const (
	dbBatchDelay   = 20 * time.Millisecond
	dbBatchRecords = 32768
	dbBatchBytes   = 16 << 20
)

func (b *BackendConfig) batchDelay() time.Duration {
	switch {
	case b.BatchDelay > 0:
		return b.BatchDelay
	case b.kind() == BackendPebble:
		return 0 // the storer's default
	}
	return dbBatchDelay
}

func (b *BackendConfig) kind() string {
	if b.Kind == "" {
		return BackendPebble
	}
	return b.Kind
}

func (b *BackendConfig) writeThrough() bool { return b.Mode == ModeWriteThrough }

func (b *BackendConfig) readThroughWait() time.Duration {
	if b.ReadThroughWait <= 0 {
		return 2 * time.Second
	}
	return b.ReadThroughWait
}

func (b *BackendConfig) validate(durable bool) error {
	switch b.kind() {
	case BackendPebble, BackendPostgres, BackendDynamoDB:
	default:
		return fmt.Errorf("backend %q: want pebble, postgres or dynamodb", b.Kind)
	}
	switch b.Mode {
	case "", ModeWriteBehind, ModeWriteThrough:
	default:
		return fmt.Errorf("backend mode %q: want write-behind or write-through", b.Mode)
	}
	switch {
	case b.NegativeTTL < 0:
		return fmt.Errorf("negative cache TTL must not be negative, got %v", b.NegativeTTL)
	case b.BacklogLimit < 0:
		return fmt.Errorf("backlog limit must not be negative, got %d", b.BacklogLimit)
	case b.BatchDelay < 0 || b.BatchDelay > time.Second:
		return fmt.Errorf("backend batch delay must be between 0 and 1s, got %v", b.BatchDelay)
	}
	nonDefault := b.kind() != BackendPebble || b.writeThrough() || b.ReadThrough || b.BacklogLimit > 0 || b.BatchDelay > 0
	if nonDefault && !durable {
		return fmt.Errorf("--backend, --backend-mode, --read-through, --backlog-limit and --backend-batch-delay need a journal (--data-dir)")
	}
	return nil
}
