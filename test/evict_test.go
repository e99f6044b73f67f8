package test

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEviction writes four times the configured memory through each
// eviction policy: every set must succeed, the newest items must stay, and
// memory must be bounded. With evictions disabled (-M) the server must say
// so instead, as memcached does.
func TestEviction(t *testing.T) {
	const memMB, valueSize = 4, 1000
	n := 4 * memMB << 20 / valueSize
	value := strings.Repeat("v", valueSize)
	for _, policy := range []string{"fifo", "merge", "random"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			s := startPetrel(t, listenOpts{args: []string{"-m", strconv.Itoa(memMB), "--eviction=" + policy}})
			c := s.dial(t)
			if err := c.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil {
				t.Fatal(err)
			}
			r, w := bufio.NewReader(c), bufio.NewWriter(c)
			const batch = 100
			for i := 0; i < n; i += batch {
				for j := i; j < i+batch; j++ {
					fmt.Fprintf(w, "set key-%d 0 0 %d\r\n%s\r\n", j, valueSize, value)
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				for j := i; j < i+batch; j++ {
					line, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("set key-%d: %v", j, err)
					}
					if line != "STORED\r\n" {
						t.Fatalf("set key-%d with %d MB full: %q", j, memMB, line)
					}
				}
			}
			got := roundTrip(t, c, fmt.Sprintf("get key-%d\r\n", n-1), "END\r\n")
			if want := fmt.Sprintf("VALUE key-%d 0 %d\r\n%s\r\nEND\r\n", n-1, valueSize, value); got != want {
				t.Errorf("the newest item is gone: get returned %.60q", got)
			}
			st := readStats(t, c)
			items, _ := strconv.Atoi(st["curr_items"])
			if items >= n || items*valueSize > 2*memMB<<20 {
				t.Errorf("curr_items = %d after %d sets of %d bytes into %d MB", items, n, valueSize, memMB)
			}
			if st["evictions"] == "0" || st["evictions"] == "" {
				t.Errorf("evictions = %q after writing 4x the memory", st["evictions"])
			}
		})
	}
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		s := startPetrel(t, listenOpts{args: []string{"-m", strconv.Itoa(memMB), "-M"}})
		c := s.dial(t)
		if err := c.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil {
			t.Fatal(err)
		}
		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "set key-%d 0 0 %d\r\n%s\r\n", i, valueSize, value)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "STORED\r\n" {
				continue
			}
			if !strings.HasPrefix(line, "SERVER_ERROR out of memory") {
				t.Errorf("set %d into a full cache with -M: %q, want SERVER_ERROR out of memory", i, line)
			}
			if got := roundTrip(t, c, "get key-0\r\n", "END\r\n"); !strings.HasPrefix(got, "VALUE key-0 ") {
				t.Errorf("with -M the first item must stay; get returned %.60q", got)
			}
			return
		}
		t.Errorf("-M: %d sets of %d bytes into %d MB all succeeded", n, valueSize, memMB)
	})
}
