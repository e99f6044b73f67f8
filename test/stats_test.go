package test

import (
	"net"
	"strings"
	"testing"
)

// statsWorkload touches every counter of statsCounters at least once.
const statsWorkload = "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n" +
	"get a\r\nget a b c\r\ngets a\r\n" +
	"delete a\r\ndelete a\r\n" +
	"incr n 1\r\ndecr n 1\r\nset n 0 0 1\r\n5\r\nincr n 2\r\ndecr n 1\r\n" +
	"cas n 0 0 1 1\r\n9\r\ncas nope 0 0 1 1\r\n9\r\n" +
	"touch b 100\r\ntouch nope 100\r\n" +
	"mg b v\r\nmg nope v\r\nms m 1\r\nx\r\n" +
	"add b 0 0 1\r\nx\r\nreplace nope 0 0 1\r\nx\r\nappend b 0 0 1\r\nx\r\n"

// statsCounters are the `stats` counters that must move as memcached's do
// for the same requests: the ones dashboards plot and hit ratios come from.
var statsCounters = []string{
	"cmd_get", "cmd_set", "cmd_touch", "get_hits", "get_misses",
	"delete_hits", "delete_misses", "incr_hits", "incr_misses",
	"decr_hits", "decr_misses", "cas_hits", "cas_misses", "cas_badval",
	"touch_hits", "touch_misses", "curr_items",
}

// statsPresent are further general stats that monitoring tools read; Petrel
// must report them, with whatever value. total_items is here because
// memcached counts an incr that rewrites its item in place as no new item,
// an implementation detail.
var statsPresent = []string{
	"pid", "uptime", "time", "version", "pointer_size", "rusage_user",
	"rusage_system", "max_connections", "curr_connections", "total_connections",
	"rejected_connections", "connection_structures", "cmd_flush", "get_expired",
	"get_flushed", "bytes_read", "bytes_written", "limit_maxbytes", "threads",
	"bytes", "evictions", "reclaimed", "expired_unfetched", "evicted_unfetched",
	"total_items",
}

// TestStatsCounters runs the same requests against memcached and petrel and
// compares the counters of `stats`.
func TestStatsCounters(t *testing.T) {
	mc := startMemcached(t, listenOpts{})
	pt := startPetrel(t, listenOpts{})
	want := statsAfter(t, mc, statsWorkload)
	got := statsAfter(t, pt, statsWorkload)
	for _, name := range statsCounters {
		if got[name] != want[name] {
			t.Errorf("stat %s = %q, memcached says %q", name, got[name], want[name])
		}
	}
	for _, name := range statsPresent {
		if _, ok := got[name]; !ok {
			t.Errorf("stats lacks %s", name)
		}
	}
	if v := got["version"]; !strings.HasPrefix(v, "1.6.") {
		t.Errorf("stats version %q does not start with 1.6.", v)
	}
}

// statsAfter sends the workload on one connection, then `stats`, and returns
// the stats by name.
func statsAfter(t *testing.T, s *server, workload string) map[string]string {
	t.Helper()
	c := s.dial(t)
	roundTrip(t, c, workload+"mn\r\n", "MN\r\n")
	return readStats(t, c)
}

func readStats(t *testing.T, c net.Conn) map[string]string {
	t.Helper()
	reply := roundTrip(t, c, "stats\r\n", "END\r\n")
	stats := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(reply, "END\r\n"), "\r\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			t.Fatalf("stats: bad line %q", line)
		}
		stats[f[1]] = f[2]
	}
	return stats
}
