package analyze

import (
	"bytes"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"time"
)

// WriteDir writes the report and its pictures into dir: report.json,
// report.txt, and mrc, sizes and heatmap as .svg and .png. The status page
// embeds dir/mrc.svg.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	var js, txt bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		return err
	}
	if err := r.WriteText(&txt); err != nil {
		return err
	}
	files := map[string][]byte{"report.json": js.Bytes(), "report.txt": txt.Bytes()}
	charts := []struct {
		name string
		w, h int
		draw func(canvas, int, int)
	}{
		{"mrc", 800, 480, r.drawMRC},
		{"sizes", 800, 600, r.drawSizes},
		{"heatmap", 800, 480, r.drawHeatmap},
	}
	for _, c := range charts {
		s := newSVG(c.w, c.h)
		c.draw(s, c.w, c.h)
		files[c.name+".svg"] = s.bytes()
		p := newPNG(c.w, c.h)
		c.draw(p, c.w, c.h)
		var b bytes.Buffer
		if err := png.Encode(&b, p.img); err != nil {
			return fmt.Errorf("%s.png: %w", c.name, err)
		}
		files[c.name+".png"] = b.Bytes()
	}
	for name, b := range files {
		// Write then rename, so a status page never serves half a file.
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	return nil
}

// plot maps data to pixels inside a frame.
type plot struct {
	x0, y0, x1, y1 float64 // pixel frame: left, top, right, bottom
	lx0, lx1       float64 // x range, log2 of bytes
	ymax           float64
}

func (p plot) px(bytes float64) float64 {
	return p.x0 + (math.Log2(math.Max(bytes, 1))-p.lx0)/(p.lx1-p.lx0)*(p.x1-p.x0)
}

func (p plot) py(v float64) float64 { return p.y1 - v/p.ymax*(p.y1-p.y0) }

func (r *Report) drawMRC(c canvas, w, h int) {
	c.text(float64(w)/2, 24, "Miss ratio vs cache size", 16, "middle", false)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pts := range [][]Point{r.MRC.LRU, r.MRC.Petrel} {
		for _, p := range pts {
			if p.Bytes > 0 {
				lo, hi = math.Min(lo, float64(p.Bytes)), math.Max(hi, float64(p.Bytes))
			}
		}
	}
	if math.IsInf(lo, 0) {
		c.text(float64(w)/2, float64(h)/2, "no reads to draw", 14, "middle", false)
		return
	}
	pl := plot{x0: 70, y0: 50, x1: float64(w) - 30, y1: float64(h) - 70, ymax: 1,
		lx0: math.Floor(math.Log2(lo)), lx1: math.Ceil(math.Log2(hi)) + 1}
	if pl.lx1-pl.lx0 < 2 {
		pl.lx1 = pl.lx0 + 2
	}
	// Grid: a vertical line every 2^k bytes, k chosen for at most 10 lines.
	step := math.Ceil((pl.lx1 - pl.lx0) / 10)
	for e := pl.lx0; e <= pl.lx1; e += step {
		x := pl.px(math.Exp2(e))
		c.line(x, pl.y0, x, pl.y1, grey, 1, false)
		c.text(x, pl.y1+18, iec(math.Exp2(e)), 11, "middle", false)
	}
	for v := 0.0; v <= 1.0001; v += 0.2 {
		y := pl.py(v)
		c.line(pl.x0, y, pl.x1, y, grey, 1, false)
		c.text(pl.x0-6, y+4, fmt.Sprintf("%.1f", v), 11, "end", false)
	}
	for _, t := range r.Targets {
		y := pl.py(1 - t.HitRatio)
		c.line(pl.x0, y, pl.x1, y, dark, 1, true)
		c.text(pl.x1-4, y-4, fmt.Sprintf("%.0f%% hits", 100*t.HitRatio), 10, "end", false)
	}
	c.line(pl.x0, pl.y1, pl.x1, pl.y1, black, 1, false)
	c.line(pl.x0, pl.y0, pl.x0, pl.y1, black, 1, false)
	c.text((pl.x0+pl.x1)/2, float64(h)-28, "cache size (bytes of items: header + key + value)", 12, "middle", false)
	c.text(20, (pl.y0+pl.y1)/2, "miss ratio", 12, "middle", true)
	// LRU is a step function of the stack distance.
	prevX, prevY := math.NaN(), 0.0
	for _, p := range r.MRC.LRU {
		x, y := pl.px(float64(p.Bytes)), pl.py(p.MissRatio)
		if !math.IsNaN(prevX) {
			c.line(prevX, prevY, x, prevY, blue, 2, false)
			c.line(x, prevY, x, y, blue, 2, false)
		}
		prevX, prevY = x, y
	}
	if !math.IsNaN(prevX) {
		c.line(prevX, prevY, pl.x1, prevY, blue, 2, false)
	}
	for i, p := range r.MRC.Petrel {
		x, y := pl.px(float64(p.Bytes)), pl.py(p.MissRatio)
		if i > 0 {
			q := r.MRC.Petrel[i-1]
			c.line(pl.px(float64(q.Bytes)), pl.py(q.MissRatio), x, y, orange, 2, false)
		}
		c.rect(x-3, y-3, 6, 6, orange)
	}
	// Legend, bottom left: miss-ratio curves start high on the left.
	lx, ly := pl.x0+16, pl.y1-44
	c.line(lx, ly, lx+25, ly, blue, 2, false)
	c.text(lx+30, ly+4, "LRU (stack distances)", 11, "start", false)
	c.line(lx, ly+18, lx+25, ly+18, orange, 2, false)
	c.text(lx+30, ly+22, "Petrel "+r.MRC.Policy+" (internal/cache)", 11, "start", false)
	c.text(pl.x0, float64(h)-8, fmt.Sprintf("sampling %s, rate %g; cold miss ratio %.3f", r.Sampling.Mode, r.Sampling.Rate, r.MRC.ColdMissRatio), 10, "start", false)
}

func (r *Report) drawSizes(c canvas, w, h int) {
	panels := []struct {
		title string
		d     Dist
		unit  string
	}{
		{"key size (bytes)", r.KeySizes, "B"},
		{"value size (bytes)", r.ValueSizes, "B"},
		{"TTL (seconds)", r.TTLs, "s"},
	}
	ph := float64(h) / float64(len(panels))
	for i, p := range panels {
		top := float64(i) * ph
		c.text(float64(w)/2, top+20, fmt.Sprintf("%s: n=%d, p50 %d, p99 %d, max %d", p.title, p.d.Count, p.d.P50, p.d.P99, p.d.Max), 13, "middle", false)
		x0, x1, y0, y1 := 60.0, float64(w)-20, top+32, top+ph-36
		c.line(x0, y1, x1, y1, black, 1, false)
		if len(p.d.Bars) == 0 {
			c.text((x0+x1)/2, (y0+y1)/2, "none", 12, "middle", false)
			continue
		}
		var peak uint64
		for _, b := range p.d.Bars {
			peak = max(peak, b.Count)
		}
		bw := (x1 - x0) / float64(len(p.d.Bars))
		every := max(1, int(math.Ceil(float64(len(p.d.Bars))/12)))
		for j, b := range p.d.Bars {
			bh := float64(b.Count) / float64(peak) * (y1 - y0)
			c.rect(x0+float64(j)*bw+1, y1-bh, math.Max(bw-2, 1), bh, blue)
			if j%every == 0 {
				c.text(x0+float64(j)*bw+bw/2, y1+14, shortNum(b.Lo), 10, "middle", false)
			}
		}
		c.text(x0-6, y0+8, fmt.Sprintf("%.0f%%", 100*float64(peak)/float64(max(p.d.Count, 1))), 10, "end", false)
		c.text(x0-6, y1, "0", 10, "end", false)
	}
}

// shortNum writes 1536 as 1.5K and so on (binary steps, as the bars are).
func shortNum(v int64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%gG", math.Round(float64(v)/(1<<30)*10)/10)
	case v >= 1<<20:
		return fmt.Sprintf("%gM", math.Round(float64(v)/(1<<20)*10)/10)
	case v >= 1<<10:
		return fmt.Sprintf("%gK", math.Round(float64(v)/(1<<10)*10)/10)
	}
	return fmt.Sprint(v)
}

func (r *Report) drawHeatmap(c canvas, w, h int) {
	hm := r.Heatmap
	c.text(float64(w)/2, 24, "Requests/s per key band (hash bands, hottest on top)", 15, "middle", false)
	x0, x1, y0, y1 := 70.0, float64(w)-90, 40.0, float64(h)-50
	if len(hm.Rates) == 0 || len(hm.Rates[0]) == 0 {
		c.text(float64(w)/2, float64(h)/2, "no keyed requests", 14, "middle", false)
		return
	}
	ncol := len(hm.Rates[0])
	peak := 0.0
	for _, row := range hm.Rates {
		for _, v := range row {
			peak = math.Max(peak, v)
		}
	}
	cw, rh := (x1-x0)/float64(ncol), (y1-y0)/float64(len(hm.Rates))
	for b, row := range hm.Rates {
		for j, v := range row {
			c.rect(x0+float64(j)*cw, y0+float64(b)*rh, cw+0.5, rh+0.5, heat(v, peak))
		}
	}
	for _, j := range []int{0, ncol / 2, ncol - 1} {
		t := time.Unix(hm.Start+int64(j)*hm.Interval, 0).UTC().Format("01-02 15:04")
		c.text(x0+(float64(j)+0.5)*cw, y1+16, t, 10, "middle", false)
	}
	c.text((x0+x1)/2, float64(h)-12, fmt.Sprintf("time (UTC), %s per column", dur(float64(hm.Interval))), 12, "middle", false)
	c.text(20, (y0+y1)/2, fmt.Sprintf("%d key bands, hottest first", len(hm.Rates)), 12, "middle", true)
	// Colour scale.
	for i := 0; i < 100; i++ {
		v := peak * math.Pow(10, -3*float64(i)/99)
		c.rect(x1+20, y0+float64(i)*(y1-y0)/100, 16, (y1-y0)/100+0.5, heat(v, peak))
	}
	c.text(x1+40, y0+8, si(peak)+"/s", 10, "start", false)
	c.text(x1+40, y1, si(peak/1000)+"/s", 10, "start", false)
}

// heat maps v on a log scale over three decades below peak to a dark
// blue → yellow ramp.
func heat(v, peak float64) color.RGBA {
	if v <= 0 || peak <= 0 {
		return color.RGBA{20, 20, 40, 255}
	}
	t := 1 + math.Log10(v/peak)/3
	t = math.Max(0, math.Min(1, t))
	lerp := func(a, b float64) uint8 { return uint8(a + t*(b-a)) }
	return color.RGBA{lerp(30, 253), lerp(30, 231), lerp(110, 37), 255}
}
