package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one server process under comparison.
type server struct {
	name string // "memcached", "petrel", "redis-always", …
	bin  string
	args []string
	addr string
	cmd  *exec.Cmd
	log  bytes.Buffer
	done chan struct{} // closed when the process has exited
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin with the arguments argsFor(port) returns and waits until it
// accepts connections; a port taken in the meantime means another try.
func start(name, bin string, argsFor func(port int) []string) (*server, error) {
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		s := &server{name: name, bin: bin, args: argsFor(port), addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		s.cmd = exec.Command(bin, s.args...)
		s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
		if err = s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		s.done = make(chan struct{})
		go func() { s.cmd.Wait(); close(s.done) }()
		for range 200 {
			select {
			case <-s.done:
				err = fmt.Errorf("%s exited at start: %s", name, strings.TrimSpace(s.log.String()))
			default:
				var c net.Conn
				if c, err = net.Dial("tcp", s.addr); err == nil {
					c.Close()
					return s, nil
				}
				time.Sleep(25 * time.Millisecond)
				continue
			}
			break
		}
		s.stop()
	}
	return nil, err
}

func (s *server) command() string { return s.bin + " " + strings.Join(s.args, " ") }

// stop asks the server to exit, then kills it.
func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// rssKB reads the server's resident memory from /proc.
func (s *server) rssKB() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// stats sends the memcached `stats` command and returns its fields.
func (s *server) stats() (map[string]string, error) {
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("stats\r\n")); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "END" {
			return out, nil
		}
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "STAT" {
			out[f[1]] = f[2]
		} else if strings.Contains(line, "ERROR") {
			return out, fmt.Errorf("stats: %s", line)
		}
	}
	return out, errors.Join(errors.New("stats: no END"), sc.Err())
}

// versionOf runs a command that prints a version and keeps its first line.
func versionOf(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
