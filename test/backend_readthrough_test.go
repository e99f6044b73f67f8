package test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fillValues sets n keys prefix0..prefixN-1 with size-byte values over
// several connections and returns the value of each.
func fillValues(t *testing.T, s *server, prefix string, n, size int) map[string]string {
	t.Helper()
	want := make(map[string]string, n)
	for i := range n {
		want[fmt.Sprintf("%s%d", prefix, i)] = fmt.Sprintf("%d-%s", i, strings.Repeat("v", size))
	}
	const conns = 4
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mc, err := dialMC(s)
			if err != nil {
				errs <- err
				return
			}
			defer mc.c.Close()
			for i := c; i < n; i += conns {
				k := fmt.Sprintf("%s%d", prefix, i)
				v := want[k]
				if got, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v)); err != nil || got != "STORED" {
					errs <- fmt.Errorf("set %s: %q, %v", k, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return want
}

// TestReadThroughLargerThanMemory writes three times -m into petrel with
// read-through on: evictions lose nothing, every key reads back from the
// backend. Concurrent misses on one evicted key make one backend read.
func TestReadThroughLargerThanMemory(t *testing.T) {
	dir := t.TempDir()
	s := startDurable(t, dir, "-m", "8", "--durability=async", "--read-through=on")
	want := fillValues(t, s, "big", 3000, 8<<10)
	waitApplied(t, s, 60*time.Second)
	mc := mustDialMC(t, s)
	if ev := statUint(t, mc, "evictions"); ev == 0 {
		t.Fatal("no evictions: the test did not go beyond memory")
	}

	// big0, written first, was evicted long ago.
	reads := statUint(t, mc, "read_through_reads")
	const n = 16
	conns := make([]*mcClient, n)
	for i := range conns {
		conns[i] = mustDialMC(t, s)
	}
	var wg sync.WaitGroup
	got := make([]map[string]value, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = conns[i].gets("big0")
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i]["big0"].data != want["big0"] {
			t.Fatalf("concurrent get %d of an evicted key: %.30q, %v", i, got[i]["big0"].data, errs[i])
		}
	}
	if d := statUint(t, mc, "read_through_reads") - reads; d != 1 {
		t.Errorf("%d concurrent misses on one key made %d backend reads, want 1", n, d)
	}

	for i := range 3000 {
		k := fmt.Sprintf("big%d", i)
		g, err := mc.gets(k)
		if err != nil {
			t.Fatal(err)
		}
		if g[k].data != want[k] {
			t.Fatalf("%s: got %.30q, want %.30q", k, g[k].data, want[k])
		}
	}
	if h := statUint(t, mc, "read_through_hits"); h == 0 {
		t.Error("read_through_hits = 0 after reading back evicted keys")
	}
}

// TestReadThroughNegativeCache: a miss in the backend is remembered only
// with --negative-cache-ttl, and forgotten when the key is written.
func TestReadThroughNegativeCache(t *testing.T) {
	f := func(ttl string, wantReads uint64) {
		t.Helper()
		dir := t.TempDir()
		args := []string{"--durability=async", "--read-through=on"}
		if ttl != "" {
			args = append(args, "--negative-cache-ttl="+ttl)
		}
		s := startDurable(t, dir, args...)
		mc := mustDialMC(t, s)
		for range 3 {
			if got, err := mc.line("get nope\r\n"); err != nil || got != "END" {
				t.Fatalf("get nope: %q, %v", got, err)
			}
		}
		if r := statUint(t, mc, "read_through_reads"); r != wantReads {
			t.Errorf("ttl %q: %d backend reads for 3 misses, want %d", ttl, r, wantReads)
		}
		if got, err := mc.line("set nope 0 0 1\r\nx\r\n"); err != nil || got != "STORED" {
			t.Fatalf("set nope: %q, %v", got, err)
		}
		if g, err := mc.gets("nope"); err != nil || g["nope"].data != "x" {
			t.Fatalf("after set: %v, %v", g, err)
		}
	}
	f("", 3)
	f("1h", 1)
}

// TestReadThroughBacklog: a key evicted while its last write is still in
// the backlog (PostgreSQL down) must not read back older from the backend:
// read-through waits for the storer to apply the journal up to the miss,
// or serves a miss; never the stale value.
func TestReadThroughBacklog(t *testing.T) {
	dir := t.TempDir()
	env := newBackendEnv(t, "postgres", dir)
	s := startDurable(t, dir, append(env.args, "-m", "8", "--durability=async", "--read-through=on")...)
	mc := mustDialMC(t, s)
	set := func(k, v string) {
		t.Helper()
		if got, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v)); err != nil || got != "STORED" {
			t.Fatalf("set %s: %q, %v", k, got, err)
		}
	}
	set("hot", "old")
	waitApplied(t, s, 60*time.Second)
	env.down()
	set("hot", "new")
	fillValues(t, s, "fill", 2500, 8<<10) // evicts hot, all in the backlog
	env.up()
	deadline := time.Now().Add(60 * time.Second)
	for {
		g, err := mc.gets("hot")
		if err != nil {
			t.Fatal(err)
		}
		v, hit := g["hot"]
		if hit && v.data == "old" {
			t.Fatal("read-through served the stale value from the backend")
		}
		if hit && v.data == "new" {
			break
		}
		if hit {
			t.Fatalf("hot = %q", v.data)
		}
		if time.Now().After(deadline) {
			t.Fatal("hot never read back")
		}
	}
	if r := statUint(t, mc, "read_through_reads"); r == 0 {
		t.Error("read_through_reads = 0: hot was never evicted, the test proved nothing")
	}
}
