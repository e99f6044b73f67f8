package test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBackendConsistency drives concurrent sets, cas and deletes of a small
// key set through several connections, then checks that the backend holds
// exactly what memory holds, version for version: for every key the value
// of the last acknowledged write, never an older one that landed late. For
// every backend, in both modes. dynalite is slow, so its runs are short.
func TestBackendConsistency(t *testing.T) {
	for _, kind := range []string{"pebble", "postgres", "dynamodb"} {
		for _, mode := range []string{"write-behind", "write-through"} {
			t.Run(kind+"/"+mode, func(t *testing.T) {
				ops := 300
				if kind == "dynamodb" {
					ops = 60
				}
				dir := t.TempDir()
				env := newBackendEnv(t, kind, dir)
				s := startDurable(t, dir, append(env.args, "--backend-mode="+mode)...)
				keys := keySet(8)
				if bad := workload(t, s, keys, 4, ops, nil); bad != 0 {
					t.Fatalf("%d operations were not acknowledged", bad)
				}
				want := memoryState(t, s, keys)
				if len(want) == 0 {
					t.Fatal("no key survived the workload: nothing to compare")
				}
				if mode == "write-through" {
					// Every reply waited for the backend: no waiting here.
					checkBackendNow(t, s, env, keys, want)
					return
				}
				waitApplied(t, s, 60*time.Second)
				checkBackendNow(t, s, env, keys, want)
			})
		}
	}
}

// checkBackendNow compares the backend with want; Pebble is opened only
// once petrel has stopped (it holds the store).
func checkBackendNow(t *testing.T, s *server, env *backendEnv, keys []string, want map[string]value) {
	t.Helper()
	if env.kind == "pebble" {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	be := env.open(t)
	defer be.Close()
	checkBackend(t, be, keys, want)
}

// TestBackendDynamoValueLimit: DynamoDB items are at most 400 KB, so with
// --backend=dynamodb a larger set is refused at the protocol, before the
// journal, with memcached's own error; one just under the limit is stored
// and reaches the table.
func TestBackendDynamoValueLimit(t *testing.T) {
	dir := t.TempDir()
	env := newBackendEnv(t, "dynamodb", dir)
	s := startDurable(t, dir, append(env.args, "-I", "2m")...)
	mc := mustDialMC(t, s)
	const maxKV = 400<<10 - 1<<10 // storage.DynamoDB.MaxValueSize
	set := func(k string, n int) string {
		t.Helper()
		got, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, n, strings.Repeat("d", n)))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// -I counts memcached's item header too (8 bytes of it for the CAS),
	// so the largest accepted key+value is 8 bytes under the table's.
	if got := set("big", maxKV-3-8); got != "STORED" {
		t.Fatalf("set of the largest value: %q", got)
	}
	if got := set("huge", maxKV-3+1); got != "SERVER_ERROR object too large for cache" {
		t.Fatalf("set of key+value one byte over the table's limit: %q", got)
	}
	waitApplied(t, s, 60*time.Second)
	be := env.open(t)
	defer be.Close()
	checkBackend(t, be, []string{"big", "huge"}, memoryState(t, s, []string{"big", "huge"}))
}

// TestBackendSwitchToDynamoTooLarge: a value over DynamoDB's limit written
// under the embedded backend, still in the journal, cannot be applied to
// DynamoDB; switching backends must refuse the start and say so, rather
// than start a storer that retries that batch for ever.
func TestBackendSwitchToDynamoTooLarge(t *testing.T) {
	dir := t.TempDir()
	s := startDurable(t, dir, "-I", "2m")
	v := strings.Repeat("x", 500<<10)
	if got, err := mustDialMC(t, s).line(fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(v), v)); err != nil || got != "STORED" {
		t.Fatalf("set of 500 KB: %q, %v", got, err)
	}
	s.kill() // the journal keeps the record: no final flush and truncation
	env := newBackendEnv(t, "dynamodb", dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a server that starts would run on
	defer cancel()
	out, err := exec.CommandContext(ctx, petrel(t), append([]string{"serve", "-p", "0", "--data-dir", dir}, env.args...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `for key "big"`) || !strings.Contains(string(out), "over this backend's limit") {
		t.Fatalf("start on DynamoDB with a 500 KB value in the journal: %v\n%s", err, out)
	}
}
