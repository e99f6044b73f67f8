package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

// benchApply applies batches of sets of 100-byte values over a key space
// of 100k and reports rows/s. 4096 is Pebble's largest batch, 50 about
// what 50 write-through clients share; single records are what a lone
// write-through client costs.
func benchApply(b *testing.B, be storage.Backend, batch int) {
	val := make([]byte, 100)
	recs := make([]journal.Record, batch)
	seq := uint64(time.Now().UnixNano()) // above earlier runs' versions
	start := seq
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		for i := range recs {
			seq++
			recs[i] = journal.Record{Seq: seq, Type: journal.TypeSet, Key: fmt.Appendf(nil, "key:%d", seq*7919%100000), Value: val}
		}
		if err := be.Apply(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq-start)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkPostgresApply(b *testing.B) {
	srv := backendtest.StartPostgres(b)
	p, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: srv.DSN, Table: backendtest.Name(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, n := range []int{4096, 500, 50, 5, 1} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchApply(b, p, n) })
	}
}

func BenchmarkDynamoDBApply(b *testing.B) {
	srv := backendtest.StartDynalite(b)
	b.Setenv("AWS_ACCESS_KEY_ID", "petrel")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "petrel")
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	d, err := storage.OpenDynamoDB(context.Background(), storage.DynamoDBOptions{
		Table: backendtest.Name(b), Region: "us-east-1", Endpoint: srv.Endpoint, CreateTable: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("batch=4096", func(b *testing.B) { benchApply(b, d, 4096) })
	b.Run("batch=1", func(b *testing.B) { benchApply(b, d, 1) })
}
