package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"petrel/internal/journal"
	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

func pgExec(t *testing.T, dsn string, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range sqls {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestPostgresLeastPrivilege: once the tables exist, a role that may only
// read and write them (no CREATE on the schema, not their owner) opens the
// backend and applies, as docs/backends.md says.
func TestPostgresLeastPrivilege(t *testing.T) {
	srv := backendtest.StartPostgres(t)
	table := backendtest.Name(t)
	p := openPostgres(t, srv.DSN) // as the superuser: creates the tables
	p.Close()
	id := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	pgExec(t, srv.DSN,
		"CREATE ROLE petrel_rw LOGIN",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON "+id(table)+", "+id(table+"_meta")+" TO petrel_rw")
	dsn := strings.Replace(srv.DSN, "postgres://postgres@", "postgres://petrel_rw@", 1)
	if dsn == srv.DSN {
		t.Fatalf("cannot make a DSN for another role from %q", srv.DSN)
	}
	rw, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: dsn, Table: table})
	if err != nil {
		t.Fatalf("open as a role with only SELECT, INSERT, UPDATE, DELETE: %v", err)
	}
	defer rw.Close()
	if err := rw.Apply(context.Background(), []journal.Record{backendtest.Set(1, "k", "v", 0, 0)}); err != nil {
		t.Fatalf("Apply as that role: %v", err)
	}
	backendtest.Want(t, rw, "k", "v", 0, 1)
}

// TestPostgresItemsTableMissing: an items table dropped under a meta table
// that records applied sequences must not be recreated empty (the storer
// would resume after rows that are gone): the open is refused, naming
// both tables.
func TestPostgresItemsTableMissing(t *testing.T) {
	srv := backendtest.StartPostgres(t)
	table := backendtest.Name(t)
	p := openPostgres(t, srv.DSN)
	if err := p.Apply(context.Background(), []journal.Record{backendtest.Set(1, "k", "v", 0, 0)}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	pgExec(t, srv.DSN, "DROP TABLE "+pgx.Identifier{table}.Sanitize())
	_, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: srv.DSN, Table: table})
	if err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), "up to 1") {
		t.Fatalf("open with the items table dropped: %v", err)
	}
}
