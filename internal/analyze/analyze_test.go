package analyze

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSynthEndToEnd(t *testing.T) {
	lines, rate := 60000, 200.0 // five minutes of log
	if raceEnabled {
		lines, rate = 30000, 100
	}
	log := synthLog(t, SynthConfig{Lines: lines, Keys: 20000, Rate: rate, Seed: 3, CacheItems: 5000})
	dir := t.TempDir()
	plain := filepath.Join(dir, "a.log")
	gz := filepath.Join(dir, "b.log.gz")
	if err := os.WriteFile(plain, log, 0o644); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(log)
	zw.Close()
	if err := os.WriteFile(gz, zb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(files ...string) *Report {
		a, err := New(Config{MaxKeys: 8000, SimKeys: 2000})
		if err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		if err := a.ReadFiles(files, &progress); err != nil {
			t.Fatal(err)
		}
		r, err := a.Report()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := run(plain)
	rz := run(gz)
	if r.Records != uint64(lines) || rz.Records != r.Records || r.Malformed != 0 {
		t.Fatalf("records %d (gz %d), malformed %d", r.Records, rz.Records, r.Malformed)
	}
	// The logged hit ratio is the modelled 5000-item LRU's; the LRU curve
	// at 5000 items' worth of bytes should be near it.
	if r.HitRatio < 0.3 || r.HitRatio > 0.95 {
		t.Fatalf("hit ratio %v", r.HitRatio)
	}
	if len(r.Timeline) != 5 || r.Timeline[0].Reads == 0 || len(r.Heatmap.Rates) != heatBands || len(r.Heatmap.Rates[0]) != 5 {
		t.Fatalf("timeline %d windows, heat map %d×%d", len(r.Timeline), len(r.Heatmap.Rates), len(r.Heatmap.Rates[0]))
	}
	if r.KeySizes.Count != r.Records || r.ValueSizes.Count == 0 || r.TTLs.Count == 0 || r.NoTTL == 0 {
		t.Fatalf("sizes: keys %d values %d ttls %d/%d", r.KeySizes.Count, r.ValueSizes.Count, r.TTLs.Count, r.NoTTL)
	}
	if len(r.MRC.LRU) == 0 || len(r.MRC.Petrel) == 0 || len(r.TopKeys) != 20 || r.TopKeys[0].Count < r.TopKeys[19].Count {
		t.Fatalf("curves %d/%d, top keys %d", len(r.MRC.LRU), len(r.MRC.Petrel), len(r.TopKeys))
	}
	for _, tg := range r.Targets {
		if tg.LRUBytes != 0 && missAt(r.MRC.LRU, tg.LRUBytes) > 1-tg.HitRatio+1e-9 {
			t.Fatalf("target %v: %d bytes gives miss ratio %v", tg.HitRatio, tg.LRUBytes, missAt(r.MRC.LRU, tg.LRUBytes))
		}
	}

	out := filepath.Join(dir, "out")
	if err := r.WriteDir(out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mrc", "sizes", "heatmap"} {
		svg, err := os.ReadFile(filepath.Join(out, name+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(bytes.NewReader(svg))
		elems := 0
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s.svg: %v", name, err)
			}
			if _, ok := tok.(xml.StartElement); ok {
				elems++
			}
		}
		if elems < 20 {
			t.Fatalf("%s.svg has %d elements", name, elems)
		}
		f, err := os.Open(filepath.Join(out, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s.png: %v", name, err)
		}
		// Something besides the white background was drawn.
		colours := map[[4]uint32]bool{}
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y += 3 {
			for x := b.Min.X; x < b.Max.X; x += 3 {
				r, g, bl, a := img.At(x, y).RGBA()
				colours[[4]uint32{r, g, bl, a}] = true
			}
		}
		if len(colours) < 3 {
			t.Fatalf("%s.png has %d colours", name, len(colours))
		}
	}
	js, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Records != r.Records || len(back.MRC.LRU) != len(r.MRC.LRU) {
		t.Fatal("report.json does not round-trip")
	}
	txt, _ := os.ReadFile(filepath.Join(out, "report.txt"))
	for _, want := range []string{"Request mix", "Miss-ratio curve", "90%: LRU", "Hottest keys", "sampling: fixed-size"} {
		if !strings.Contains(string(txt), want) {
			t.Fatalf("report.txt lacks %q", want)
		}
	}
}

func TestExpiryDeleteAndFlush(t *testing.T) {
	f := func(ops []op, wantCold float64) {
		t.Helper()
		r := analyzeOps(t, Config{Rate: 1, SimKeys: -1, SimMemory: 1 << 20}, ops)
		if r.MRC.ColdMissRatio != wantCold {
			t.Fatalf("%v: cold miss ratio %v, want %v", ops, r.MRC.ColdMissRatio, wantCold)
		}
		// The simulated caches are large enough to miss only cold.
		last := r.MRC.Petrel[len(r.MRC.Petrel)-1]
		if last.MissRatio != wantCold {
			t.Fatalf("%v: Petrel miss ratio %v, want %v", ops, last.MissRatio, wantCold)
		}
	}
	const t0 = 1700000000
	set := func(sec int64, k string, ttl int64) op { return op{sec, "set", k, 10, ttl, "stored"} }
	get := func(sec int64, k string) op { return op{sec, "get", k, 10, 0, "hit"} }
	f([]op{set(t0, "a", 0), get(t0+1, "a"), get(t0+2, "a")}, 0)
	f([]op{set(t0, "a", 5), get(t0+4, "a"), {t0 + 5, "get", "a", 0, 0, "miss"}}, 0.5)
	f([]op{set(t0, "a", t0+5), get(t0+4, "a"), {t0 + 6, "get", "a", 0, 0, "miss"}}, 0.5) // absolute exptime
	f([]op{set(t0, "a", -1), {t0, "get", "a", 0, 0, "miss"}}, 1)
	f([]op{set(t0, "a", 0), {t0, "delete", "a", 0, 0, "deleted"}, {t0, "get", "a", 0, 0, "miss"}, get(t0, "b")}, 1)
	f([]op{set(t0, "a", 0), {t0, "flush_all", "-", 0, 0, "ok"}, {t0 + 1, "get", "a", 0, 0, "miss"}}, 1)
	f([]op{set(t0, "a", 5), {t0 + 1, "touch", "a", 0, 100, "touched"}, get(t0+50, "a")}, 0)
	f([]op{{t0, "get", "a", 10, 0, "hit"}, get(t0, "a")}, 0.5) // first sight of a key is a cold miss, then it exists
	f([]op{set(t0, "a", 5), {t0 + 1, "append", "a", 3, 0, "stored"}, {t0 + 6, "get", "a", 0, 0, "miss"}}, 1)
	f([]op{{t0, "append", "a", 3, 0, "not_stored"}, {t0 + 1, "get", "a", 0, 0, "miss"}}, 1)
}

func TestOutOfRangeTimes(t *testing.T) {
	ops := []op{
		{1700000000, "set", "a", 1, 0, "stored"},
		{1700000000 + 10*365*86400, "get", "a", 1, 0, "hit"}, // ten years later
		{1700000060, "get", "a", 1, 0, "hit"},
	}
	r := analyzeOps(t, Config{Rate: 1, SimMemory: -1}, ops)
	if r.OutOfRange != 1 || len(r.Timeline) != 2 || r.Records != 3 {
		t.Fatalf("out of range %d, %d windows, %d records", r.OutOfRange, len(r.Timeline), r.Records)
	}
}
