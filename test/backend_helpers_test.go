package test

// Helpers for the storage backend tests (backend_*_test.go): a petrel
// started against pebble, PostgreSQL or dynalite, a concurrent workload of
// sets, cas and deletes over a small key set, and the check that the
// backend converged to exactly what memory holds.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"petrel/internal/storage"
	"petrel/internal/storage/backendtest"
)

// backendEnv is one backend under test: the flags that point petrel at it,
// how to open it from the test, and how to take it down and bring it back.
type backendEnv struct {
	kind string
	args []string
	open func(t *testing.T) storage.Backend // for pebble: only while petrel is stopped
	down func()
	up   func()
}

func newBackendEnv(t *testing.T, kind, dir string) *backendEnv {
	t.Helper()
	switch kind {
	case "pebble":
		return &backendEnv{kind: kind, open: func(t *testing.T) storage.Backend {
			p, err := storage.OpenPebble(storage.PebbleDir(dir), storage.PebbleOptions{ReadOnly: true})
			if err != nil {
				t.Fatalf("open pebble: %v", err)
			}
			return p
		}}
	case "postgres":
		pg := backendtest.StartPostgres(t)
		table := backendtest.Name(t)
		return &backendEnv{kind: kind, args: []string{"--backend=postgres", "--postgres-dsn=" + pg.DSN, "--postgres-table=" + table},
			open: func(t *testing.T) storage.Backend {
				p, err := storage.OpenPostgres(context.Background(), storage.PostgresOptions{DSN: pg.DSN, Table: table})
				if err != nil {
					t.Fatalf("open postgres: %v", err)
				}
				return p
			}, down: pg.Stop, up: pg.Start}
	case "dynamodb":
		setAWSEnv(t)
		dl := backendtest.StartDynalite(t)
		table := backendtest.Name(t)
		return &backendEnv{kind: kind, args: []string{"--backend=dynamodb", "--dynamodb-endpoint=" + dl.Endpoint,
			"--dynamodb-table=" + table, "--dynamodb-region=us-east-1"},
			open: func(t *testing.T) storage.Backend {
				d, err := storage.OpenDynamoDB(context.Background(), storage.DynamoDBOptions{Table: table,
					Region: "us-east-1", Endpoint: dl.Endpoint})
				if err != nil {
					t.Fatalf("open dynamodb: %v", err)
				}
				return d
			}, down: dl.Kill, up: dl.Start}
	}
	t.Fatalf("unknown backend %q", kind)
	return nil
}

// setAWSEnv gives the AWS SDK (in the test and in petrel, which inherits
// the environment) static credentials for dynalite, which ignores them.
func setAWSEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "petrel")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "petrel")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// workload runs conns connections of sets, cas and deletes over keys until
// stop is closed or each has done ops operations, and returns the number of
// replies that were not the expected kind (SERVER_ERROR, a dropped
// connection). Every other reply is an acknowledged result.
func workload(t *testing.T, s *server, keys []string, conns, ops int, stop <-chan struct{}) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mc, err := dialMC(s)
			if err != nil {
				mu.Lock()
				bad++
				mu.Unlock()
				return
			}
			defer mc.c.Close()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < ops; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[r.IntN(len(keys))]
				v := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", r.IntN(40)))
				var got string
				ok := false
				switch n := r.IntN(10); {
				case n < 6:
					got, err = mc.line(fmt.Sprintf("set %s %d 0 %d\r\n%s\r\n", k, w, len(v), v))
					ok = got == "STORED"
				case n < 8:
					var cur map[string]value
					if cur, err = mc.gets(k); err != nil {
						break
					}
					c, found := cur[k]
					if !found {
						got, err = mc.line(fmt.Sprintf("add %s %d 0 %d\r\n%s\r\n", k, w, len(v), v))
						ok = got == "STORED" || got == "NOT_STORED"
						break
					}
					got, err = mc.line(fmt.Sprintf("cas %s %d 0 %d %d\r\n%s\r\n", k, w, len(v), c.cas, v))
					ok = got == "STORED" || got == "EXISTS" || got == "NOT_FOUND"
				default:
					got, err = mc.line("delete " + k + "\r\n")
					ok = got == "DELETED" || got == "NOT_FOUND"
				}
				if err != nil || !ok {
					mu.Lock()
					if bad < 5 {
						t.Logf("worker %d op %d: reply %q, error %v", w, i, got, err)
					}
					bad++
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return bad
}

// waitApplied waits until the storer has applied every journaled record,
// and returns the journal's last sequence.
func waitApplied(t *testing.T, s *server, within time.Duration) uint64 {
	t.Helper()
	mc := mustDialMC(t, s)
	deadline := time.Now().Add(within)
	for {
		st, err := mc.stats()
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		last, _ := strconv.ParseUint(st["journal_last_seq"], 10, 64)
		applied, _ := strconv.ParseUint(st["storer_applied_seq"], 10, 64)
		if applied >= last {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("the storer applied up to %d of %d within %v (backlog %s records, retries %s, last error in the log)",
				applied, last, within, st["storer_backlog_records"], st["storer_retries"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memoryState reads keys from petrel's memory (read-through off).
func memoryState(t *testing.T, s *server, keys []string) map[string]value {
	t.Helper()
	mc := mustDialMC(t, s)
	got, err := mc.gets(keys...)
	if err != nil {
		t.Fatalf("gets: %v", err)
	}
	return got
}

// checkBackend checks that the backend holds exactly want: the same
// values, with versions equal to the CAS memory shows (the journal
// sequence of the write), and nothing for the keys want lacks.
func checkBackend(t *testing.T, be storage.Backend, keys []string, want map[string]value) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Unix()
	for _, k := range keys {
		it, found, err := be.Get(ctx, []byte(k), now)
		if err != nil {
			t.Fatalf("backend get %s: %v", k, err)
		}
		w, ok := want[k]
		switch {
		case !ok && found:
			t.Errorf("%s: backend holds %q (version %d), memory holds nothing", k, it.Value, it.Version)
		case ok && !found:
			t.Errorf("%s: backend holds nothing, memory holds %q (cas %d)", k, w.data, w.cas)
		case ok && (string(it.Value) != w.data || it.Version != w.cas):
			t.Errorf("%s: backend holds %q version %d, memory %q cas %d", k, it.Value, it.Version, w.data, w.cas)
		}
	}
}

func keySet(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	return keys
}
