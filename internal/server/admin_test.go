package server

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// scrape fetches /metrics and returns the value of one sample line.
func scrape(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape body: %v", err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no sample %s in /metrics:\n%s", sample, body)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("sample %s: %v", sample, err)
	}
	return v
}

func TestAdminMetricsMove(t *testing.T) {
	cfg := testConfig()
	cfg.AdminAddr = "127.0.0.1:0"
	srv, _ := startServer(t, cfg)
	base := "http://" + srv.AdminAddr().String()
	before := scrape(t, base, "petrel_cmd_get_total")
	c := dialTCP(t, srv)
	c.send("echo a\r\necho b\r\n")
	c.expect("a\r\n")
	c.expect("b\r\n")
	if got := scrape(t, base, "petrel_cmd_get_total"); got != before+2 {
		t.Errorf("petrel_cmd_get_total went %v -> %v, want +2", before, got)
	}
	if got := scrape(t, base, "petrel_curr_connections"); got != 1 {
		t.Errorf("petrel_curr_connections = %v, want 1", got)
	}
	if got := scrape(t, base, `petrel_request_duration_seconds_count{cmd="other"}`); got != 2 {
		t.Errorf("latency samples for echo = %v, want 2", got)
	}
	// stats reset clears `stats` but never makes a Prometheus counter go down.
	srv.resetStats()
	if got := scrape(t, base, "petrel_cmd_get_total"); got != before+2 {
		t.Errorf("after stats reset petrel_cmd_get_total = %v, want %v", got, before+2)
	}
	resp, err := http.Get(base + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/pprof/ status %d", resp.StatusCode)
	}
}

func TestClassify(t *testing.T) {
	f := func(req string, want family) {
		t.Helper()
		if got := classify([]byte(req)); got != want {
			t.Errorf("classify(%q) = %s, want %s", req, familyNames[got], familyNames[want])
		}
	}
	f("get a b\r\n", famGet)
	f("gets a\r\n", famGet)
	f("mg a v\r\n", famGet)
	f("set a 0 0 1\r\n", famSet)
	f("ms a 1\r\n", famSet)
	f("cas a 0 0 1 2\r\n", famSet)
	f("delete a\r\n", famDelete)
	f("incr a 1\r\n", famArith)
	f("gat 0 a\r\n", famTouch)
	f("flush_all\r\n", famFlush)
	f("stats\r\n", famStats)
	f("getter\r\n", famOther)
	f("", famOther)
	f("\x80\x00\x00\x01", famGet)
	f("\x80\x11", famSet)
	f("\x80\x0a", famOther)
}
