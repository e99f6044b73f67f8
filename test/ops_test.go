package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAdminMetrics reads the Prometheus exposition of the admin listener and
// checks that the counters follow the traffic.
func TestAdminMetrics(t *testing.T) {
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "tcp")))
	s := startServer(t, "petrel", petrel(t), []string{"serve", "--admin=" + admin}, listenOpts{})
	c := s.dial(t)
	roundTrip(t, c, "set a 0 0 1\r\nx\r\nget a\r\nget a\r\nget b\r\nmn\r\n", "MN\r\n")

	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	metrics := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if line := sc.Text(); line != "" && line[0] != '#' {
			if name, value, ok := strings.Cut(line, " "); ok {
				metrics[name] = value
			}
		}
	}
	f := func(name, want string) {
		t.Helper()
		if got, ok := metrics[name]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", name, got, ok, want)
		}
	}
	f("petrel_get_hits_total", "2")
	f("petrel_get_misses_total", "1")
	f("petrel_cmd_get_total", "3")
	f("petrel_cmd_set_total", "1")
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// TestShutdownCommand checks that `shutdown` is refused by default and, with
// -A, ends the server cleanly, as in memcached.
func TestShutdownCommand(t *testing.T) {
	for _, impl := range []string{"memcached", "petrel"} {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			var s *server
			if impl == "petrel" {
				s = startPetrel(t, listenOpts{args: []string{"-A"}})
			} else {
				s = startMemcached(t, listenOpts{args: []string{"-A"}})
			}
			s.expectExit()
			c := s.dial(t)
			if _, err := c.Write([]byte("shutdown\r\n")); err != nil {
				t.Fatal(err)
			}
			if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if b, err := io.ReadAll(c); err != nil {
				t.Errorf("after shutdown: read %q, %v; want the connection closed", b, err)
			}
			select {
			case <-s.exited:
				if impl == "petrel" && s.err != nil {
					t.Errorf("petrel exited with %v after shutdown", s.err)
				}
			case <-time.After(stopTimeout):
				t.Errorf("%s still runs %v after shutdown", impl, stopTimeout)
			}
		})
	}
}

// TestConnLimit checks -c: the connection over the limit is told
// "ERROR Too many open connections" and closed, and the others keep working.
func TestConnLimit(t *testing.T) {
	s := startPetrel(t, listenOpts{args: []string{"-c", "2"}})
	a := s.dial(t)
	// The start-up probe's connection counts until the server has seen it
	// close; wait for that, so that the limit is reached exactly by b.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if readStats(t, a)["curr_connections"] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("curr_connections never came down to 1")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := s.dial(t)
	if got := roundTrip(t, b, "mn\r\n", "MN\r\n"); got != "MN\r\n" {
		t.Fatalf("second connection with -c 2: %q", got)
	}
	over := s.dial(t)
	if err := over.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(over)
	if err != nil || string(got) != "ERROR Too many open connections\r\n" {
		t.Errorf("third connection with -c 2: %q, %v; want the error and a close", got, err)
	}
	if got := roundTrip(t, a, "mn\r\n", "MN\r\n"); got != "MN\r\n" {
		t.Errorf("a connection within the limit after the refusal: %q", got)
	}
}

// TestIdleTimeout checks -o idle_timeout: an idle connection is closed, as
// memcached does, while the server keeps serving others.
func TestIdleTimeout(t *testing.T) {
	for _, impl := range []string{"memcached", "petrel"} {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			o := listenOpts{args: []string{"-o", "idle_timeout=1"}}
			var s *server
			if impl == "petrel" {
				s = startPetrel(t, o)
			} else {
				s = startMemcached(t, o)
			}
			c := s.dial(t)
			if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
				t.Errorf("idle connection: read %q, %v; want a close without a word", b, err)
			}
			if got := roundTrip(t, s.dial(t), "mn\r\n", "MN\r\n"); got != "MN\r\n" {
				t.Errorf("a new connection after an idle kick: %q", got)
			}
		})
	}
}
