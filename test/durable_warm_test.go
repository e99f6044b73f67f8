package test

import (
	"fmt"
	"strings"
	"testing"
)

// TestDurableWarmRestart stores n items, restarts the server and reads
// them all back: gracefully (SIGTERM) in sync mode, and after SIGKILL in
// async mode. Async acknowledges once the journal group is written to the
// operating system (fdatasync comes every --journal-sync-interval), so a
// process crash must lose nothing acknowledged; only a power loss could
// lose up to the interval, which a test cannot produce. The count of
// survivors is logged as the measurement.
func TestDurableWarmRestart(t *testing.T) {
	f := func(name string, crash bool, args ...string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := startDurable(t, dir, args...)
			const n = 3000
			storeMany(t, mustDialMC(t, s), n)
			if crash {
				s.kill()
			} else if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			s2 := startDurable(t, dir, args...)
			mc := mustDialMC(t, s2)
			found := 0
			for i := 0; i < n; i += 100 {
				keys := make([]string, 0, 100)
				for k := i; k < min(i+100, n); k++ {
					keys = append(keys, fmt.Sprintf("w%d", k))
				}
				got, err := mc.gets(keys...)
				if err != nil {
					t.Fatal(err)
				}
				for k, key := range keys {
					if want := warmValue(i + k); got[key].data == want {
						found++
					} else if len(got[key].data) != 0 {
						t.Errorf("%s = %q, want %q", key, got[key].data, want)
					}
				}
			}
			t.Logf("%s: %d of %d acknowledged writes readable after the restart", name, found, n)
			if found != n {
				t.Errorf("%d acknowledged writes lost", n-found)
			}
			if v := statUint(t, mc, "warmup_items"); v != n {
				t.Errorf("warmup_items = %d, want %d", v, n)
			}
		})
	}
	f("sync-sigterm", false)
	f("async-sigkill", true, "--durability", "async", "--journal-sync-interval", "10s")
}

func warmValue(i int) string { return fmt.Sprintf("value-%d-%s", i, strings.Repeat("w", i%50)) }

// storeMany pipelines n sets and reads every reply.
func storeMany(t *testing.T, mc *mcClient, n int) {
	t.Helper()
	var req strings.Builder
	for i := 0; i < n; i++ {
		v := warmValue(i)
		fmt.Fprintf(&req, "set w%d 0 0 %d noreply\r\n%s\r\n", i, len(v), v)
	}
	// noreply sets, then one mn: its reply is held like theirs, so once it
	// arrives every set before it is acknowledged.
	l, err := mc.line(req.String() + "mn\r\n")
	if err != nil || l != "MN" {
		t.Fatalf("storing %d items: %q, %v", n, l, err)
	}
}
