package server

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestStatusPage loads the page and its JSON after some traffic: the
// figures are the server's, the MRC is embedded when the analysis directory
// has one, and the journal is reported off.
func TestStatusPage(t *testing.T) {
	dir := t.TempDir()
	svg := `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>`
	if err := os.WriteFile(filepath.Join(dir, "mrc.svg"), []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.AnalysisDir = dir
	srv := startRealServer(t, cfg)
	admin := "http://" + srv.AdminAddr().String()
	c := dialTCP(t, srv)
	for _, k := range []string{"a", "b", "c"} {
		c.send("set " + k + " 0 0 1\r\nx\r\n")
		c.expect("STORED\r\n")
	}
	c.send("get a\r\nget zz\r\n")
	for range 4 {
		c.line()
	}

	resp, page := get(t, admin+"/")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{
		`<td class="n" id="curr_items">3</td>`,
		`<td class="n" id="get_hits">1</td>`,
		`<td class="n" id="get_misses">1</td>`,
		`<div class="v" id="hit-ratio">50.0%</div>`,
		`<div class="v" id="curr-connections">1</div>`,
		`<p id="journal">journal: off</p>`,
		`<p id="cmdlog">command log: off</p>`,
		`<img class="mrc" id="mrc" src="/analysis/mrc.svg"`,
		`id="segments_open"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	_, js := get(t, admin+"/status.json")
	var d statusData
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		t.Fatalf("status.json: %v\n%s", err, js)
	}
	if d.CurrItems != 3 || d.GetHits != 1 || d.GetMisses != 1 || d.Ops != 5 || d.Durability != "off" || d.MRC == "" {
		t.Errorf("status.json: %+v", d)
	}

	resp, body := get(t, admin+"/analysis/mrc.svg")
	if body != svg || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("mrc.svg: %q %q", resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get(t, admin+"/analysis/..%2fetc%2fpasswd"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("path escape: status %d", resp.StatusCode)
	}
}

// TestStatusRates: the rate compares looks at least a second apart, and
// before there is one it is the average since start.
func TestStatusRates(t *testing.T) {
	var r statusRates
	t0 := rateSampleAt(0, 0)
	if _, ok := r.observe(t0); ok {
		t.Fatal("a first look has a base")
	}
	if _, ok := r.observe(rateSampleAt(500, 50)); ok {
		t.Error("a look half a second later has a base")
	}
	base, ok := r.observe(rateSampleAt(2500, 250))
	if !ok || base.ops != 0 {
		t.Errorf("look at 2.5s: base %+v %v, want the first look", base, ok)
	}
	base, ok = r.observe(rateSampleAt(3000, 300))
	if !ok || base.ops != 0 {
		t.Errorf("look at 3s: base %+v %v, want the first look (the 2.5s one is too recent)", base, ok)
	}
	base, ok = r.observe(rateSampleAt(3600, 360))
	if !ok || base.ops != 250 {
		t.Errorf("look at 3.6s: base %+v %v, want the 2.5s look (the newest a second old)", base, ok)
	}
}

func rateSampleAt(ms int64, ops uint64) rateSample {
	return rateSample{at: time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond), ops: ops}
}

func TestStatusLags(t *testing.T) {
	f := func(fields []statField, journal, storer string) {
		t.Helper()
		d := statusData{Journal: fields}
		d.lags()
		if d.JournalLag != journal || d.StorerLag != storer {
			t.Errorf("lags of %v = %q, %q; want %q, %q", fields, d.JournalLag, d.StorerLag, journal, storer)
		}
	}
	f(nil, "", "")
	f([]statField{{"journal_last_seq", "120"}, {"journal_durable_seq", "100"}}, "20", "")
	f([]statField{{"journal_last_seq", "5"}, {"journal_durable_seq", "5"}, {"storer_backlog_records", "7"}}, "0", "7")
}
