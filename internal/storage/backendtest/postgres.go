package backendtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// PostgresServer is a throwaway PostgreSQL cluster (Debian's packages)
// listening on a free loopback port, created by initdb in a temporary
// directory and removed when the test ends.
type PostgresServer struct {
	DSN  string // postgres://postgres@127.0.0.1:port/postgres?sslmode=disable
	Port int

	t    testing.TB
	bin  string
	dir  string
	data string
	as   []string // command prefix to run as an unprivileged user
}

// postgresBin finds the newest /usr/lib/postgresql/*/bin holding initdb.
func postgresBin() string {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi > vj
	})
	if len(found) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
		return ""
	}
	return filepath.Dir(found[0])
}

// StartPostgres initialises and starts a cluster. initdb refuses to run as
// root, so as root the cluster belongs to `nobody` and every command runs
// through runuser. fsync is off: the tests kill processes, not the machine,
// and the operating system keeps what was written. synchronous_commit stays
// on: without it a commit lives only in PostgreSQL's memory for up to 200 ms
// and an immediate stop loses writes the backend reported applied, which no
// real deployment does.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		Missing(t, "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin")
	}
	dir, err := os.MkdirTemp("", "petrel-pg-")
	if err != nil {
		t.Fatalf("postgres: temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &PostgresServer{t: t, bin: bin, dir: dir, data: filepath.Join(dir, "data"), Port: FreePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("postgres: running as root and no user nobody to own the cluster: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("postgres: chown %s: %v", dir, err)
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			Missing(t, "runuser (util-linux), needed to run PostgreSQL as nobody when root")
		}
		s.as = []string{runuser, "-u", "nobody", "--"}
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("postgres: initdb: %v\n%s", err, out)
	}
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
	s.Start()
	t.Cleanup(func() { s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop") })
	return s
}

func (s *PostgresServer) run(name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string(nil), s.as...), filepath.Join(s.bin, name)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

// Start starts (or restarts) the server and waits until it accepts
// connections.
func (s *PostgresServer) Start() {
	s.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -h 127.0.0.1 -c fsync=off -c full_page_writes=off", s.Port, s.dir)
	// Right after an immediate stop, pg_ctl start can report "could not
	// start server" for a postmaster that comes up moments later (seen in
	// CI: the server's log shows it ready). Ask pg_ctl status before giving
	// up, and try again a few times.
	var out []byte
	var err error
	for try := 0; try < 3; try++ {
		out, err = s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "60", "start")
		if err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
		if _, serr := s.run("pg_ctl", "-D", s.data, "status"); serr == nil {
			err = nil
			break
		}
	}
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.t.Fatalf("postgres: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	if err := waitDial(fmt.Sprintf("127.0.0.1:%d", s.Port), 30*time.Second); err != nil {
		s.t.Fatalf("postgres: %v", err)
	}
}

// Stop stops the server abruptly (no shutdown checkpoint), as a crash or a
// lost database host would; open connections see errors.
func (s *PostgresServer) Stop() {
	s.t.Helper()
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop"); err != nil {
		s.t.Fatalf("postgres: pg_ctl stop: %v\n%s", err, out)
	}
}
