package storage_test

import (
	"sync/atomic"
	"testing"
	"time"

	"petrel/internal/storage/backendtest"
)

// TestDynamoDBOutage kills dynalite in the middle of a load, so that the
// endpoint refuses connections: Apply fails while it is down, and once it
// is back (same data directory) the table converges to exactly the last
// write of every key.
func TestDynamoDBOutage(t *testing.T) {
	srv := backendtest.StartDynalite(t)
	dynamoEnv(t)
	d := openDynamo(t, srv.Endpoint)
	failures, last := faultLoad(t, d, func(failures *atomic.Int64) {
		srv.Kill()
		for failures.Load() < 3 {
			time.Sleep(10 * time.Millisecond)
		}
		srv.Start()
	})
	if failures < 3 {
		t.Fatalf("%d failed Applies during the outage, want at least 3", failures)
	}
	checkConverged(t, d, last, 3000)
	// A fresh client, reloading the meta item, sees the same.
	checkConverged(t, openDynamo(t, srv.Endpoint), last, 3000)
}
