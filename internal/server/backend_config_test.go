package server

import (
	"strings"
	"testing"
	"time"

	"petrel/internal/storage"
)

func TestBackendConfigValidate(t *testing.T) {
	f := func(b BackendConfig, durable bool, wantErr string) {
		t.Helper()
		err := b.validate(durable)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%+v durable=%v: %v", b, durable, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%+v durable=%v: error %v, want one containing %q", b, durable, err, wantErr)
		}
	}
	f(BackendConfig{}, false, "")
	f(BackendConfig{}, true, "")
	f(BackendConfig{Kind: "postgres", Mode: ModeWriteThrough, ReadThrough: true}, true, "")
	f(BackendConfig{Kind: "dynamodb", BacklogLimit: 1 << 20}, true, "")
	f(BackendConfig{Kind: "redis"}, true, "want pebble, postgres or dynamodb")
	f(BackendConfig{Mode: "write-around"}, true, "want write-behind or write-through")
	f(BackendConfig{NegativeTTL: -1}, true, "must not be negative")
	f(BackendConfig{BacklogLimit: -1}, true, "must not be negative")
	f(BackendConfig{Kind: "postgres"}, false, "need a journal")
	f(BackendConfig{ReadThrough: true}, false, "need a journal")
	f(BackendConfig{Mode: ModeWriteThrough}, false, "need a journal")
	f(BackendConfig{BatchDelay: time.Millisecond}, false, "need a journal")
	f(BackendConfig{BatchDelay: -time.Millisecond}, true, "between 0 and 1s")
	f(BackendConfig{BatchDelay: 2 * time.Second}, true, "between 0 and 1s")
	f(BackendConfig{Kind: "postgres", BatchDelay: 50 * time.Millisecond}, true, "")
}

func TestBatchDelay(t *testing.T) {
	f := func(b BackendConfig, want time.Duration) {
		t.Helper()
		if got := b.batchDelay(); got != want {
			t.Errorf("%+v: batch delay %v, want %v", b, got, want)
		}
	}
	f(BackendConfig{}, 0) // the storer's own default (2 ms)
	f(BackendConfig{Kind: BackendPostgres}, dbBatchDelay)
	f(BackendConfig{Kind: BackendDynamoDB}, dbBatchDelay)
	f(BackendConfig{Kind: BackendDynamoDB, BatchDelay: 5 * time.Millisecond}, 5*time.Millisecond)
	f(BackendConfig{BatchDelay: 7 * time.Millisecond}, 7*time.Millisecond)
}

func TestBacklogBytes(t *testing.T) {
	f := func(records uint64, bytes, want int64) {
		t.Helper()
		l := storage.Lag{BacklogRecords: records, BacklogBytes: bytes}
		if got := backlogBytes(l); got != want {
			t.Errorf("records %d bytes %d: %d, want %d", records, bytes, got, want)
		}
	}
	f(0, 0, 0)        // caught up
	f(0, -1, 0)       // caught up, even before the storer found its place
	f(10, 1500, 1500) // the journal bytes after the storer's position
	f(10, -1, -1)     // unknown until the storer has found its place
}
