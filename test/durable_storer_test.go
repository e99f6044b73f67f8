package test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/internal/storage"
)

// TestExternalStorerFollowsServer runs `petrel storer --follow` beside a
// live server, as docs/storage.md describes: the storer reads the journal
// files the server writes, whose active segment is zero-filled ahead of its
// records (internal/journal/zero.go), across many segment rolls. Every
// acknowledged write must reach the store, and the server must truncate its
// journal below what the storer holds durably.
func TestExternalStorerFollowsServer(t *testing.T) {
	bin := petrel(t)
	dir := shortTempDir(t)
	var out lockedBuffer
	st := exec.Command(bin, "storer", "--data-dir", dir, "--follow", "--poll", "5ms", "--flush-interval", "100ms")
	st.Stdout, st.Stderr = &out, &out
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			st.Process.Kill()
			st.Wait()
		}
		if t.Failed() {
			t.Logf("--- petrel storer output:\n%s", out.String())
		}
	}()
	// The storer takes storer.lock first; wait for it, or the server would
	// run a storer of its own.
	for i := 0; !strings.Contains(out.String(), "following"); i++ {
		if i > 500 {
			t.Fatalf("petrel storer did not start following")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := startDurable(t, dir, "--journal-segment-size", "64k")
	defer s.shutdown(t)
	mc := mustDialMC(t, s)
	const n = 3000
	want := map[string]string{}
	for i := range n {
		key := fmt.Sprintf("k%d", i%1000) // overwrites, so versions matter
		val := fmt.Sprintf("%s-v%d-%s", key, i, strings.Repeat("x", i%97))
		if l, err := mc.line(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(val), val)); err != nil || l != "STORED" {
			t.Fatalf("set %s: %q, %v", key, l, err)
		}
		want[key] = val
		if i%7 == 0 {
			if l, err := mc.line(fmt.Sprintf("delete k%d\r\n", (i+500)%1000)); err != nil || (l != "DELETED" && l != "NOT_FOUND") {
				t.Fatalf("delete: %q, %v", l, err)
			}
			delete(want, fmt.Sprintf("k%d", (i+500)%1000))
		}
	}
	last := statUint(t, mc, "journal_last_seq")
	segs := statUint(t, mc, "journal_segments")
	deadline := time.Now().Add(60 * time.Second)
	for {
		applied, err := storage.ReadAppliedMark(dir)
		if err == nil && applied >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the storer holds up to %d (%v) of %d after 60 s", applied, err, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The server truncates below the storer's mark as it goes.
	for statUint(t, mc, "journal_segments") >= segs && segs > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("journal still has %d segments (had %d) after the storer caught up", statUint(t, mc, "journal_segments"), segs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	st.Process.Signal(syscall.SIGTERM)
	if err := st.Wait(); err != nil {
		t.Fatalf("petrel storer: %v", err)
	}
	stopped = true
	if o := out.String(); strings.Contains(o, "corrupt") || strings.Contains(o, "rror") {
		t.Errorf("storer reported a problem:\n%s", o)
	}

	p, err := storage.OpenPebble(storage.PebbleDir(dir), storage.PebbleOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	now := time.Now().Unix()
	for i := range 1000 {
		key := "k" + strconv.Itoa(i)
		it, ok, err := p.Get(context.Background(), []byte(key), now)
		if err != nil {
			t.Fatal(err)
		}
		switch w, live := want[key]; {
		case live && (!ok || string(it.Value) != w):
			t.Fatalf("%s: store has %q (found %v), want %q", key, it.Value, ok, w)
		case !live && ok:
			t.Fatalf("%s: deleted, but the store has %q", key, it.Value)
		}
	}
	t.Logf("%d records over %d+ journal segments followed by the external storer; %d live keys checked in the store", last, segs, len(want))
}
