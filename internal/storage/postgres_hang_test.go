package storage_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/internal/journal"
	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

// freezeProc stops pid (SIGSTOP): a server frozen so keeps its listening
// socket, whose handshakes the kernel completes, and never answers. It is
// resumed (SIGCONT) when the test ends, even a failing one.
func freezeProc(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
}

// freezePostgres freezes the postmaster of the cluster at dsn (first, so
// that it forks no more), then its children.
func freezePostgres(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var data string
	err = c.QueryRow(ctx, "SHOW data_directory").Scan(&data)
	c.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	freezeProc(t, pm)
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(pm)).Output() // exit 1: no children
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			freezeProc(t, pid)
		}
	}
}

// wantInError checks that err is not nil and holds every one of want.
func wantInError(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	t.Logf("%s: %v", what, err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: the error does not say %q: %v", what, w, err)
		}
	}
}

// TestPostgresFrozen: against a frozen server every call of the start
// and the warm-up times out naming the server, the database, the user and
// the step, and Close cuts the connections the server does not let go
// (pgx would wait 15 s for each, for the cancel request it sends).
func TestPostgresFrozen(t *testing.T) {
	srv := backendtest.StartPostgres(t)
	table := backendtest.Name(t)
	var mu sync.Mutex
	var logged []string
	p, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: srv.DSN, Table: table,
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			logged = append(logged, fmt.Sprintf(format, args...))
		}})
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	if err := p.Apply(context.Background(), []journal.Record{backendtest.Set(1, "k", "v", 0, 0)}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	freezePostgres(t, srv.DSN)
	where := []string{fmt.Sprintf("127.0.0.1:%d", srv.Port), "database postgres", "user postgres", "timed out"}

	_, err = storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: srv.DSN, Table: table, Timeout: 500 * time.Millisecond})
	wantInError(t, "OpenPostgres", err, append(where, "connect", "500ms")...)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = p.AppliedSeq(ctx)
	cancel()
	wantInError(t, "AppliedSeq", err, append(where, "read the applied sequence")...)

	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = p.Scan(ctx, time.Now().Unix(), func(storage.Item) error { return nil })
	cancel()
	wantInError(t, "Scan", err, append(where, "scan")...)

	p.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.Contains(logged[0], where[0]) || !strings.Contains(logged[0], "without waiting") {
		t.Errorf("Close logged %q, want one line saying it cut the connections to %s", logged, where[0])
	}
}

// TestPostgresOpenErrorNamesServer: a server that refuses connections
// fails the open at "connect", named; the password never shows.
func TestPostgresOpenErrorNamesServer(t *testing.T) {
	port := backendtest.FreePort(t)
	dsn := fmt.Sprintf("postgres://alice:s3cret@127.0.0.1:%d/cache?sslmode=disable", port)
	_, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: dsn, Timeout: 5 * time.Second})
	wantInError(t, "OpenPostgres", err, fmt.Sprintf("127.0.0.1:%d", port), "database cache", "user alice", "connect")
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
}
