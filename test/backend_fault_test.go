package test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBackendFault takes the backend down in the middle of a write-behind
// load (PostgreSQL stopped with pg_ctl -m immediate, dynalite killed):
// petrel must keep acknowledging every write from its journal, and once the
// backend is back, the backend must converge to exactly the acknowledged
// state.
func TestBackendFault(t *testing.T) {
	for _, kind := range []string{"postgres", "dynamodb"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			env := newBackendEnv(t, kind, dir)
			s := startDurable(t, dir, env.args...)
			keys := keySet(16)
			ops := 400
			if kind == "dynamodb" {
				ops = 100
			}
			stop := make(chan struct{})
			done := make(chan int)
			go func() { done <- workload(t, s, keys, 4, ops, stop) }()
			time.Sleep(200 * time.Millisecond)
			env.down()
			// While the backend is down, every write is still acknowledged.
			mc := mustDialMC(t, s)
			for i := range 50 {
				k := keys[i%len(keys)]
				v := fmt.Sprintf("down-%d", i)
				if got, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v)); err != nil || got != "STORED" {
					t.Fatalf("set while the backend is down: %q, %v", got, err)
				}
			}
			time.Sleep(500 * time.Millisecond)
			env.up()
			if bad := <-done; bad != 0 {
				t.Fatalf("%d operations were not acknowledged", bad)
			}
			close(stop)
			want := memoryState(t, s, keys)
			if len(want) == 0 {
				t.Fatal("no key survived the workload: nothing to compare")
			}
			waitApplied(t, s, 90*time.Second)
			// The AWS SDK retries a call itself (3 attempts, with backoff),
			// which can span dynalite's restart; PostgreSQL's pool fails
			// the batch.
			if r := statUint(t, mc, "storer_retries"); r == 0 && kind == "postgres" {
				t.Errorf("storer_retries = 0: the backend outage was never noticed")
			}
			be := env.open(t)
			defer be.Close()
			checkBackend(t, be, keys, want)
		})
	}
}

// TestBackendRestart restarts petrel in the middle of a backlog: the
// backend is down, writes are acknowledged from the journal, petrel is
// killed (SIGKILL), the backend comes back, petrel starts again. The
// backend must then hold exactly the acknowledged writes, in order: the
// last one of each key, at its sequence.
func TestBackendRestart(t *testing.T) {
	for _, kind := range []string{"postgres", "dynamodb"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			env := newBackendEnv(t, kind, dir)
			s := startDurable(t, dir, env.args...)
			keys := keySet(8)
			mc := mustDialMC(t, s)
			set := func(k, v string) {
				t.Helper()
				if got, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v)); err != nil || got != "STORED" {
					t.Fatalf("set %s: %q, %v", k, got, err)
				}
			}
			for i, k := range keys {
				set(k, fmt.Sprintf("before-%d", i))
			}
			waitApplied(t, s, 60*time.Second)
			env.down()
			want := map[string]string{}
			for round := range 5 {
				for i, k := range keys {
					if i%4 == 3 && round == 4 {
						if got, err := mc.line("delete " + k + "\r\n"); err != nil || got != "DELETED" {
							t.Fatalf("delete %s: %q, %v", k, got, err)
						}
						delete(want, k)
						continue
					}
					v := fmt.Sprintf("r%d-%d", round, i)
					set(k, v)
					want[k] = v
				}
			}
			s.kill()
			env.up()
			s = startDurable(t, dir, env.args...)
			mem := memoryState(t, s, keys)
			for _, k := range keys {
				if mem[k].data != want[k] {
					t.Errorf("%s after the restart: memory holds %q, want %q", k, mem[k].data, want[k])
				}
			}
			waitApplied(t, s, 90*time.Second)
			be := env.open(t)
			defer be.Close()
			checkBackend(t, be, keys, mem)
		})
	}
}

// TestBackendBacklogLimit: with the backend down, the journal grows until
// --backlog-limit, then mutations get SERVER_ERROR (reads go on); once the
// backend is back and has caught up, writes are accepted again, and the
// backend holds every acknowledged write.
func TestBackendBacklogLimit(t *testing.T) {
	dir := t.TempDir()
	env := newBackendEnv(t, "postgres", dir)
	s := startDurable(t, dir, append(env.args, "--durability=async", "--backlog-limit=256k")...)
	mc := mustDialMC(t, s)
	env.down()
	v := strings.Repeat("b", 1000)
	acked := map[string]bool{}
	refused := ""
	for i := 0; i < 5000 && refused == ""; i++ {
		k := fmt.Sprintf("bl%d", i)
		got, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v))
		switch {
		case err != nil:
			t.Fatal(err)
		case got == "STORED":
			acked[k] = true
		case strings.HasPrefix(got, "SERVER_ERROR backlog"):
			refused = k
		default:
			t.Fatalf("set %s: %q", k, got)
		}
		if i%50 == 49 {
			time.Sleep(100 * time.Millisecond) // let the watcher measure
		}
	}
	if refused == "" {
		t.Fatalf("5 MB written past a 256 KiB backlog limit without SERVER_ERROR")
	}
	if g, err := mc.gets("bl0"); err != nil || g["bl0"].data != v {
		t.Fatalf("read during back-pressure: %v", err)
	}
	env.up()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", refused, len(v), v))
		if err != nil {
			t.Fatal(err)
		}
		if got == "STORED" {
			acked[refused] = true
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still refused 60 s after the backend came back: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitApplied(t, s, 60*time.Second)
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	be := env.open(t)
	defer be.Close()
	checkBackend(t, be, keys, memoryState(t, s, keys))
	if len(memoryState(t, s, keys)) != len(keys) {
		t.Errorf("memory lost acknowledged keys")
	}
}

// TestBackendWarmUp: a restarted petrel loads its memory tier from the
// backend (then the journal's tail), with progress in the log.
func TestBackendWarmUp(t *testing.T) {
	for _, kind := range []string{"postgres", "dynamodb"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			env := newBackendEnv(t, kind, dir)
			s := startDurable(t, dir, env.args...)
			n := 200
			if kind == "dynamodb" {
				n = 50
			}
			want := fillValues(t, s, "warm", n, 100)
			waitApplied(t, s, 60*time.Second)
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			s = startDurable(t, dir, env.args...)
			m := regexp.MustCompile(`warm-up done: loading the store: (\d+)/`).FindStringSubmatch(s.stderr.String())
			if m == nil {
				t.Fatalf("no warm-up from the backend in the log:\n%s", s.stderr.String())
			}
			if got, _ := strconv.Atoi(m[1]); got < n {
				t.Errorf("loaded %d items from the backend, want %d", got, n)
			}
			mc := mustDialMC(t, s)
			for k, v := range want {
				g, err := mc.gets(k)
				if err != nil || g[k].data != v {
					t.Fatalf("%s after the restart: %v, %v", k, g[k].data, err)
				}
			}
		})
	}
}

// TestBackendWriteThroughDown takes PostgreSQL down under write-through: a
// write's reply waits for the backend only up to --backend-timeout, then
// its connection is closed unacknowledged (before, it waited for ever,
// holding the connection slot, and SIGTERM could not stop the server). A
// stop with a write still waiting exits promptly. Every write, answered or
// not, is in the journal, and reaches the backend once it is back.
func TestBackendWriteThroughDown(t *testing.T) {
	dir := t.TempDir()
	env := newBackendEnv(t, "postgres", dir)
	args := append(env.args, "--backend-mode=write-through", "--backend-timeout=1s")
	s := startDurable(t, dir, args...)
	mc := mustDialMC(t, s)
	if got, err := mc.line("set a 0 0 1\r\n1\r\n"); err != nil || got != "STORED" {
		t.Fatalf("set with the backend up: %q, %v", got, err)
	}
	env.down()
	start := time.Now()
	if got, err := mc.line("set b 0 0 1\r\n2\r\n"); err == nil {
		t.Fatalf("set with the backend down was answered: %q", got)
	}
	t.Logf("the write-through reply gave up after %v", time.Since(start).Round(time.Millisecond))
	// A write still waiting when the server is told to stop.
	if _, err := mustDialMC(t, s).c.Write([]byte("set c 0 0 1\r\n3\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Stop(); err != nil {
		t.Fatalf("stop with a write-through reply waiting: %v", err)
	}
	env.up()
	s = startDurable(t, dir, args...)
	keys := []string{"a", "b", "c"}
	mem := memoryState(t, s, keys)
	for i, k := range keys {
		if want := strconv.Itoa(i + 1); mem[k].data != want {
			t.Errorf("%s after the restart: %q, want %q", k, mem[k].data, want)
		}
	}
	waitApplied(t, s, 60*time.Second)
	be := env.open(t)
	defer be.Close()
	checkBackend(t, be, keys, mem)
}
