package storage_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

// TestDynamoDBFrozen: against a frozen dynalite the open, the applied
// sequence and the scan time out naming the table, the region, the
// endpoint and the step.
func TestDynamoDBFrozen(t *testing.T) {
	srv := backendtest.StartDynalite(t)
	dynamoEnv(t)
	d := openDynamo(t, srv.Endpoint)
	out, err := exec.Command("pgrep", "-f", "--", fmt.Sprintf("--port %d --path", srv.Port)).Output()
	pids := strings.Fields(string(out))
	if err != nil || len(pids) != 1 {
		t.Fatalf("dynalite's pid: %q, %v", out, err)
	}
	pid, _ := strconv.Atoi(pids[0])
	freezeProc(t, pid)
	table := backendtest.Name(t)
	where := []string{"dynamodb table " + table, "us-east-1", srv.Endpoint, "timed out"}

	_, err = storage.OpenDynamoDB(context.Background(), storage.DynamoDBOptions{Table: table, Region: "us-east-1",
		Endpoint: srv.Endpoint, CreateTable: true, Timeout: 500 * time.Millisecond})
	wantInError(t, "OpenDynamoDB", err, append(where, "describe the table", "500ms")...)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = d.AppliedSeq(ctx)
	cancel()
	wantInError(t, "AppliedSeq", err, append(where, "read the applied sequence")...)

	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = d.Scan(ctx, time.Now().Unix(), func(storage.Item) error { return nil })
	cancel()
	wantInError(t, "Scan", err, append(where, "scan")...)
}
