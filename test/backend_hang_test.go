package test

// A database that hangs rather than fails: PostgreSQL frozen with SIGSTOP
// (the kernel still completes TCP handshakes on its listening socket, so a
// connection is made and then never answered, as with a wedged host or a
// network blackhole). Petrel must then fail its start naming the database
// and the step, and stop promptly when asked to in the middle of warming
// up from it, losing nothing it acknowledged.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/internal/storage/backendtest"
)

// pgFreezer freezes and resumes every process of a test cluster.
type pgFreezer struct {
	data    string // the cluster's data directory
	stopped []int
}

// newPGFreezer asks the running cluster for its data directory (where
// postmaster.pid is) and resumes it when the test ends, so that a failing
// test never leaves it frozen (its own cleanup then stops it).
func newPGFreezer(t *testing.T, dsn string) *pgFreezer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer c.Close(ctx)
	f := &pgFreezer{}
	if err := c.QueryRow(ctx, "SHOW data_directory").Scan(&f.data); err != nil {
		t.Fatalf("postgres: data directory: %v", err)
	}
	t.Cleanup(f.resume)
	return f
}

// freeze sends SIGSTOP to the postmaster, then to its children. The
// postmaster goes first, so that it forks no child that would escape; the
// children are listed again until no new one shows up.
func (f *pgFreezer) freeze(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.data, "postmaster.pid"))
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postgres: postmaster.pid: %v", err)
	}
	f.stop(t, pm)
	for {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(pm)).Output() // exit 1: no children
		added := false
		for _, field := range strings.Fields(string(out)) {
			pid, err := strconv.Atoi(field)
			if err == nil && !f.isStopped(pid) {
				f.stop(t, pid)
				added = true
			}
		}
		if !added {
			return
		}
	}
}

func (f *pgFreezer) stop(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("postgres: SIGSTOP %d: %v", pid, err)
	}
	f.stopped = append(f.stopped, pid)
}

func (f *pgFreezer) isStopped(pid int) bool {
	for _, p := range f.stopped {
		if p == pid {
			return true
		}
	}
	return false
}

// resume sends SIGCONT to every process freeze stopped.
func (f *pgFreezer) resume() {
	for _, pid := range f.stopped {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	f.stopped = nil
}

// launchPetrel starts `petrel serve` on a free port without waiting for it
// to serve: the caller watches a start that may hang or fail. It is
// killed, if still running, when the test ends.
func launchPetrel(t *testing.T, args ...string) *server {
	t.Helper()
	port := freePort(t, "tcp")
	s := &server{name: "petrel", network: "tcp", addr: "127.0.0.1:" + strconv.Itoa(port),
		stderr: &lockedBuffer{}, exited: make(chan struct{})}
	argv := append(append([]string{}, petrelServe...), "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0")
	s.cmd = exec.Command(petrel(t), append(argv, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
	s.cmd.Env = serverEnv()
	dieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("petrel: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.kill()
		}
		out := s.stderr.String()
		if strings.Contains(out, "WARNING: DATA RACE") || strings.Contains(out, "panic:") {
			t.Errorf("petrel reported a data race or panicked")
		}
		if t.Failed() {
			t.Logf("--- petrel output:\n%s", out)
		}
	})
	return s
}

// waitExit waits up to within for the process to exit.
func (s *server) waitExit(within time.Duration) bool {
	select {
	case <-s.exited:
		return true
	case <-time.After(within):
		return false
	}
}

// TestBackendOpenFrozen starts petrel against a frozen PostgreSQL: the
// start must fail once --backend-timeout has passed, and say which
// database it could not reach and what it was doing.
func TestBackendOpenFrozen(t *testing.T) {
	pg := backendtest.StartPostgres(t)
	fr := newPGFreezer(t, pg.DSN)
	fr.freeze(t)
	s := launchPetrel(t, "--data-dir", t.TempDir(), "--backend=postgres", "--postgres-dsn="+pg.DSN,
		"--postgres-table="+backendtest.Name(t), "--backend-timeout=1s")
	if !s.waitExit(2 * time.Minute) {
		t.Fatal("petrel was still starting 2 minutes after it was started against a frozen database")
	}
	if s.err == nil {
		t.Fatal("petrel started against a frozen database")
	}
	var missing []string
	for _, want := range []string{fmt.Sprintf("127.0.0.1:%d", pg.Port), "database postgres", "user postgres", "connect", "timed out"} {
		if !strings.Contains(s.stderr.String(), want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the error does not say %q", missing)
	}
}

// TestBackendWarmupFrozen freezes PostgreSQL in the middle of petrel's
// warm-up scan, then sends petrel SIGTERM: it must exit promptly (well
// before --backend-timeout, so that it cannot pass by timing out), and
// after the database is resumed and petrel restarted, hold everything it
// had acknowledged. Once with --accept-during-warmup (listeners open, a
// client waiting on the load), where the stop must be clean and its log
// must name the database that held it up; and once without (the warm-up
// runs before the listeners open), where the stop must be clean too and
// say that it stopped the warm-up.
func TestBackendWarmupFrozen(t *testing.T) {
	for _, accept := range []bool{true, false} {
		t.Run(fmt.Sprintf("accept=%v", accept), func(t *testing.T) {
			pg, dir, args, want, fr := preloadFreezable(t, "60s")
			if accept {
				args = append(args, "--accept-during-warmup")
			}
			s := launchPetrel(t, append([]string{"--data-dir", dir}, args...)...)
			var reply chan string
			if accept {
				if err := s.waitReady(listenOpts{args: []string{"--data-dir"}}); err != nil { // answers during the warm-up
					t.Fatal(err)
				}
			}
			waitScan(t, s, pg.DSN)
			fr.freeze(t)
			if accept {
				mc := mustDialMC(t, s)
				if statUint(t, mc, "warmup_done") != 0 {
					t.Fatal("the warm-up was over before the database was frozen: preload more rows")
				}
				// A key not loaded yet: the set waits for the load.
				reply = make(chan string, 1)
				go func() {
					l, err := mc.line("set during 0 0 3\r\nnew\r\n")
					reply <- fmt.Sprintf("%s %v", l, err)
				}()
			}
			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			exitThenResume(t, s, fr, time.Now(), 20*time.Second, "SIGTERM during a warm-up from a frozen database (--backend-timeout 60s)")
			if s.err != nil {
				t.Errorf("petrel exited with %v after SIGTERM, want a clean exit", s.err)
			}
			if !accept && !strings.Contains(s.stderr.String(), "stopped by a signal during the warm-up") {
				t.Errorf("the log does not say that the signal stopped the warm-up")
			}
			if accept {
				if r := <-reply; strings.HasPrefix(r, "STORED ") {
					want["during"] = "new" // acknowledged: it must survive
				} else {
					t.Logf("the set waiting for the load got %q", r)
				}
				line := fmt.Sprintf("127.0.0.1:%d (database postgres, user postgres): closed ", pg.Port)
				if out := s.stderr.String(); !strings.Contains(out, line) || !strings.Contains(out, "without waiting for the server") {
					t.Errorf("the log does not say that the stop cut the connections to the frozen database (%q…)", line)
				}
				if !strings.Contains(s.stderr.String(), "warm-up stopped by the shutdown") {
					t.Errorf("the log does not say that the shutdown stopped the warm-up")
				}
			}
			checkAcknowledged(t, startDurable(t, dir, args...), want)
		})
	}
}

// TestBackendWarmupStalled: a database that freezes in the middle of the
// warm-up scan fails the start after --backend-timeout without an item,
// saying so, instead of holding it until a signal; the next start, with
// the database back, has every acknowledged write.
func TestBackendWarmupStalled(t *testing.T) {
	pg, dir, args, want, fr := preloadFreezable(t, "2s")
	s := launchPetrel(t, append([]string{"--data-dir", dir}, args...)...)
	waitScan(t, s, pg.DSN)
	fr.freeze(t)
	exitThenResume(t, s, fr, time.Now(), 30*time.Second, "the database froze mid-scan (--backend-timeout 2s)")
	if s.err == nil {
		t.Fatal("petrel exited 0 after a stalled warm-up, want a failed start")
	}
	if out := s.stderr.String(); !strings.Contains(out, "handed over no item for 2s (--backend-timeout)") {
		t.Fatalf("the log does not name the stalled warm-up:\n%s", out)
	}
	checkAcknowledged(t, startDurable(t, dir, args...), want)
}

// preloadFreezable starts a PostgreSQL cluster that can be frozen, and
// preloads it through petrel (preloadBackend) with --backend-timeout
// timeout. It returns the cluster, petrel's data directory and arguments,
// what petrel acknowledged, and the freezer.
func preloadFreezable(t *testing.T, timeout string) (*backendtest.PostgresServer, string, []string, map[string]string, *pgFreezer) {
	t.Helper()
	pg := backendtest.StartPostgres(t)
	dir := t.TempDir()
	args := []string{"-m", "512", "--backend=postgres", "--postgres-dsn=" + pg.DSN,
		"--postgres-table=" + backendtest.Name(t), "--backend-timeout=" + timeout}
	want := preloadBackend(t, dir, args)
	return pg, dir, args, want, newPGFreezer(t, pg.DSN)
}

// exitThenResume waits up to within for petrel to exit, logs how long it
// took since from (the event what), resumes the database, and fails the
// test if petrel did not exit.
func exitThenResume(t *testing.T, s *server, fr *pgFreezer, from time.Time, within time.Duration, what string) {
	t.Helper()
	exited := s.waitExit(within)
	t.Logf("petrel exited %v after %s: %v", time.Since(from).Round(time.Millisecond), what, s.err)
	fr.resume()
	if !exited {
		t.Fatalf("petrel did not exit within %v of %s", within, what)
	}
}

// preloadBackend starts petrel on dir with args, fills the backend with
// enough rows that scanning them takes a while (about 100 MB), waits until
// they are applied, stops petrel, and returns what it acknowledged.
func preloadBackend(t *testing.T, dir string, args []string) map[string]string {
	t.Helper()
	s := startDurable(t, dir, args...)
	mc := mustDialMC(t, s)
	want := map[string]string{}
	const n, size, batch = 25000, 4000, 500
	for b := 0; b < n; b += batch {
		var req strings.Builder
		for i := b; i < b+batch; i++ {
			k, v := fmt.Sprintf("bulk:%d", i), bulkValue(i, size)
			fmt.Fprintf(&req, "set %s 0 0 %d noreply\r\n%s\r\n", k, len(v), v)
			want[k] = v
		}
		if l, err := mc.line(req.String() + "mn\r\n"); err != nil || l != "MN" {
			t.Fatalf("preloading: %q, %v", l, err)
		}
	}
	for i := range 20 {
		k, v := fmt.Sprintf("mark:%d", i), fmt.Sprintf("acknowledged-%d", i)
		if l, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v)); err != nil || l != "STORED" {
			t.Fatalf("set %s: %q, %v", k, l, err)
		}
		want[k] = v
	}
	waitApplied(t, s, 3*time.Minute)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	return want
}

func bulkValue(i, size int) string {
	p := fmt.Sprintf("%08d", i)
	return strings.Repeat(p, size/len(p))
}

// waitScan waits until petrel's warm-up scan (storage.Postgres.Scan, the
// only query ordered by version) runs in PostgreSQL.
func waitScan(t *testing.T, s *server, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer c.Close(context.Background())
	for {
		var n int
		err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE '%ORDER BY version DESC%' AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			t.Fatalf("waiting for the warm-up scan: %v", err)
		}
		if n > 0 {
			return
		}
		select {
		case <-s.exited:
			t.Fatalf("petrel exited before its warm-up scan: %v", s.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkAcknowledged checks that memory holds every acknowledged write.
func checkAcknowledged(t *testing.T, s *server, want map[string]string) {
	t.Helper()
	mc := mustDialMC(t, s)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	lost := 0
	for len(keys) > 0 {
		chunk := keys[:min(100, len(keys))]
		keys = keys[len(chunk):]
		got, err := mc.gets(chunk...)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range chunk {
			if got[k].data != want[k] {
				if lost++; lost <= 5 {
					t.Errorf("%s: %d bytes after the restart, want the %d acknowledged", k, len(got[k].data), len(want[k]))
				}
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged keys lost", lost, len(want))
	}
}
