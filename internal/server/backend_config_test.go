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
	f := func(records uint64, estimate, disk, want int64) {
		t.Helper()
		l := storage.Lag{BacklogRecords: records, BacklogBytes: estimate, JournalBytes: disk}
		if got := backlogBytes(l); got != want {
			t.Errorf("records %d estimate %d disk %d: %d, want %d", records, estimate, disk, got, want)
		}
	}
	f(0, 0, 1<<20, 0)        // caught up: the journal on disk is not a backlog
	f(10, 1500, 1<<20, 1500) // the storer's estimate
	f(10, 0, 1<<20, 1<<20)   // nothing applied yet: the journal's size
	f(10, 0, -1, 0)          // size unknown
}
