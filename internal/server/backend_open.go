package server

// Opening the chosen storage backend (--backend). Pebble lives in the data
// directory beside the journal; PostgreSQL and DynamoDB are reached over
// the network and are opened the same way whether the storer runs here or
// not. Whatever the backend, the storer lock in the data directory decides
// which process applies this journal.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"petrel/internal/storage"
)

// openBackend opens the configured backend. readOnly applies to Pebble
// only (another process runs the storer); the remote backends are simply
// not written to then. Each request of opening a remote backend has
// --backend-timeout to answer, and the error names the database and the
// step (a frozen database otherwise shows as a bare "context deadline
// exceeded").
func (srv *Server) openBackend(d *durable, readOnly bool) (storage.Backend, error) {
	bc := d.cfg.Backend
	ctx := srv.startStop // a signal during a slow open stops it
	switch bc.kind() {
	case BackendPostgres:
		p, err := storage.OpenPostgres(ctx, storage.PostgresOptions{DSN: bc.PostgresDSN, Table: bc.PostgresTable,
			Timeout: bc.timeout(), Logf: srv.logger.Printf})
		if err != nil {
			return nil, srv.openError(err, bc.timeout())
		}
		srv.logger.Printf("storage: backend postgres (table %s)", orDefault(bc.PostgresTable, "petrel_items"))
		return p, nil
	case BackendDynamoDB:
		db, err := storage.OpenDynamoDB(ctx, storage.DynamoDBOptions{Table: bc.DynamoTable, Region: bc.DynamoRegion,
			Endpoint: bc.DynamoEndpoint, CreateTable: true, Timeout: bc.timeout()})
		if err != nil {
			return nil, srv.openError(err, bc.timeout())
		}
		srv.clampItemSize(db.MaxValueSize())
		srv.logger.Printf("storage: backend dynamodb (table %s, largest value %d bytes)", orDefault(bc.DynamoTable, "petrel"), db.MaxValueSize())
		return db, nil
	}
	return storage.OpenPebble(storage.PebbleDir(d.cfg.DataDir), storage.PebbleOptions{
		ReadOnly:  readOnly,
		Logf:      func(format string, args ...any) { srv.logf(2, format, args...) },
		ErrorLogf: srv.logger.Printf,
		OnFatal: func(msg string) {
			// Pebble cannot go on, and the server cannot without its
			// store's progress; exiting is a crash as far as data goes,
			// which the journal makes safe. A panic would say the same
			// with a page of goroutines.
			srv.logger.Printf("STORE FAILED: pebble: %s. Exiting: every acknowledged write is in the journal, and the next start replays what the store lacks; if the disk under %s is full, free space first.", msg, d.cfg.DataDir)
			os.Exit(1)
		},
	})
}

// clampItemSize lowers -I so that no value over the backend's limit is
// ever acknowledged: a larger set gets memcached's own "SERVER_ERROR
// object too large for cache" at the protocol, before the journal, rather
// than a journaled write the storer could never apply. It runs in New,
// before any connection.
func (srv *Server) clampItemSize(maxValue int) {
	limit := srv.cfg.MaxItemSize
	if limit <= 0 {
		limit = 1 << 20
	}
	// memcached's arithmetic adds at least this to key+value (no flags,
	// no CAS); the backend limits key+value.
	if most := maxValue + memcachedItemSize(0, 0, 0, false); most < limit {
		srv.cfg.MaxItemSize = most
		srv.logger.Printf("storage: item size limit (-I) lowered to %d bytes: the backend stores keys and values of up to %d bytes together", most, maxValue)
	}
}

// openError says which setting bounded a step of opening that timed out,
// or that a signal stopped it (NewContext).
func (srv *Server) openError(err error, timeout time.Duration) error {
	if srv.startStop.Err() != nil {
		return fmt.Errorf("%w: open the backend: %w", ErrStopped, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("open the backend (--backend-timeout %v): %w", timeout, err)
	}
	return fmt.Errorf("open the backend: %w", err)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
