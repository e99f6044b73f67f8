package storage_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"petrel/internal/journal"
	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

// dynamoEnv points the standard AWS chain at dummy credentials: dynalite
// checks that requests are signed, not by whom.
func dynamoEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "petrel")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "petrel")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func openDynamo(t *testing.T, endpoint string) *storage.DynamoDB {
	t.Helper()
	d, err := storage.OpenDynamoDB(context.Background(), storage.DynamoDBOptions{
		Table: backendtest.Name(t), Region: "us-east-1", Endpoint: endpoint, CreateTable: true,
	})
	if err != nil {
		t.Fatalf("OpenDynamoDB: %v", err)
	}
	return d
}

func TestDynamoDBConformance(t *testing.T) {
	srv := backendtest.StartDynalite(t)
	dynamoEnv(t)
	backendtest.Run(t, func(t *testing.T) storage.Backend { return openDynamo(t, srv.Endpoint) })
}

// TestDynamoDBValueLimit checks the refuse-at-protocol choice: the limit is
// advertised, a value at it is stored, and one over it is refused by Apply
// without writing any of the batch.
func TestDynamoDBValueLimit(t *testing.T) {
	srv := backendtest.StartDynalite(t)
	dynamoEnv(t)
	d := openDynamo(t, srv.Endpoint)
	defer d.Close()
	ctx := context.Background()
	max := d.MaxValueSize()
	if max < 390<<10 || max >= 400<<10 {
		t.Fatalf("MaxValueSize = %d, want just under 400 KB", max)
	}
	fits := string(bytes.Repeat([]byte("x"), max-len("fits")))
	if err := d.Apply(ctx, []journal.Record{backendtest.Set(1, "fits", fits, 0, 0)}); err != nil {
		t.Fatalf("Apply at the limit: %v", err)
	}
	backendtest.Want(t, d, "fits", fits, 0, 1)
	big := fits + "xxxxxxxxxxx"
	err := d.Apply(ctx, []journal.Record{backendtest.Set(2, "other", "v", 0, 0), backendtest.Set(3, "big", big, 0, 0)})
	if !errors.Is(err, storage.ErrValueTooLarge) {
		t.Fatalf("Apply over the limit = %v, want ErrValueTooLarge", err)
	}
	backendtest.Want(t, d, "other", "", 0, 0)
	if got, err := d.AppliedSeq(ctx); err != nil || got != 1 {
		t.Fatalf("AppliedSeq = %d, %v; want 1", got, err)
	}
}

// TestDynamoDBTombstonePurge: see TestPostgresTombstonePurge.
func TestDynamoDBTombstonePurge(t *testing.T) {
	srv := backendtest.StartDynalite(t)
	dynamoEnv(t)
	ctx := context.Background()
	d, err := storage.OpenDynamoDB(ctx, storage.DynamoDBOptions{
		Table: backendtest.Name(t), Region: "us-east-1", Endpoint: srv.Endpoint, CreateTable: true, TombstoneLag: 10,
	})
	if err != nil {
		t.Fatalf("OpenDynamoDB: %v", err)
	}
	apply := func(recs ...journal.Record) {
		t.Helper()
		if err := d.Apply(ctx, recs); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	apply(backendtest.Set(1, "a", "1", 0, 0), backendtest.Delete(2, "a"), backendtest.Set(3, "b", "3", 0, 0))
	apply(backendtest.Set(40, "c", "40", 0, 0))
	apply(backendtest.Set(1, "a", "1", 0, 0))
	backendtest.Want(t, d, "a", "", 0, 0)
	backendtest.Want(t, d, "b", "3", 0, 3)
	backendtest.Want(t, d, "c", "40", 0, 40)
	// Only b and c are live.
	n := 0
	if err := d.Scan(ctx, 0, func(storage.Item) error { n++; return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if n != 2 {
		t.Fatalf("Scan found %d items, want 2", n)
	}
}
