package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strings"
)

// markdown renders the summary as the tables docs/performance.md shows.
func markdown(s *Summary) string {
	var b strings.Builder
	m := s.Machine
	fmt.Fprintf(&b, "## %s, %s\n\n", s.Name, s.Date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%d cores (%s), Linux %s, %s; %s; %s. Commit %s.\n\n", m.Cores, m.CPU, m.Kernel, m.Go, m.Memcached, m.Petrel, m.Commit)
	fmt.Fprintf(&b, "Servers `-t %d -m %d`, client `petrel bench -threads %d`, %d rounds of %s per server, alternating.\n\n",
		s.Options.ServerThreads, s.Options.MemoryMB, s.Options.ClientThreads, s.Options.Rounds, s.Options.Duration)
	fmt.Fprintf(&b, "Load average (1/5/15 min) %s at the start, %s at the end: the machine is shared.\n\n", m.LoadStart, m.LoadEnd)
	fmt.Fprintf(&b, "Command: `%s`\n\n", s.Command)
	if len(s.Matrix) > 0 {
		b.WriteString("| workload | memcached ops/s | Petrel ops/s | throughput | memcached p99 µs | Petrel p99 µs | p99 | memcached RSS MiB | Petrel RSS MiB | RSS | errors (mc/petrel) |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range s.Matrix {
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %s%s | %.0f | %.0f | %s%s | %.0f | %.0f | %s | %d/%d |\n",
				r.Workload, r.Memcached.OpsPerSec, r.Petrel.OpsPerSec, ratioText(r.Throughput), rounds(r.ThroughputRounds),
				r.Memcached.P99us, r.Petrel.P99us, ratioText(r.P99), rounds(r.P99Rounds),
				r.Memcached.RSSKB/1024, r.Petrel.RSSKB/1024, ratioText(r.RSS), r.Memcached.Errors, r.Petrel.Errors)
		}
		b.WriteString("\nRatios are Petrel/memcached: the median of the per-round ratios, which follow in brackets. " +
			"The ops/s, p99 and RSS columns are each server's own medians, so their quotient can differ from the ratio. " +
			"Targets: throughput ≥ 1.0×, p99 ≤ 1.0×.\n\n")
	}
	if c := s.Cross; c != nil {
		fmt.Fprintf(&b, "Cross-check with memcslap (`%s`): memcached %s gets/s, Petrel %s gets/s, ratio %s.\n\n",
			c.Command, floats(c.Memcached), floats(c.Petrel), ratioText(c.Ratio))
	}
	if len(s.Memory) > 0 {
		b.WriteString("| memory benchmark | limit MiB | loaded | stored (found by a scan) | payload MiB | RSS MiB | RSS bytes per stored item | ratio | overhead bytes per item | ratio |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range s.Memory {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %.0f | %s | %.0f | %s |\n", r.Server, r.LimitMB, r.Loaded, r.Stored,
				r.Payload>>20, r.RSSKB>>10, r.BytesPerItem, ratioText(r.Ratio), r.Overhead, ratioText(r.OverheadRatio))
		}
		b.WriteString("\nTarget: Petrel's bytes per stored item ≤ 0.75× memcached's. Overhead is RSS less the key and value bytes of the items found.\n\n")
	}
	b.WriteString(durableMarkdown(s))
	b.WriteString(restartMarkdown(s))
	b.WriteString(cmdlogMarkdown(s))
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, f := range s.Failures {
		first, _, _ := strings.Cut(f, "\n")
		fmt.Fprintf(&b, "- failure: %s\n", first)
	}
	return b.String()
}

// rounds shows per-round ratios as " (0.91 1.02 1.10)".
func rounds(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return " (" + strings.Join(parts, " ") + ")"
}

func floats(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, "/")
}

// bar is one pair of bars in a plot: the reference beside Petrel.
type bar struct {
	label     string
	note      string // under the label, e.g. the ratio
	ref, mine float64
	solo      bool // one server only: leave out the missing bar
}

// barsSVG draws panels of horizontal bar pairs, the reference in grey and
// Petrel in blue, each panel on its own scale. No dependency: plain SVG.
func barsSVG(title, refName string, panels []string, data [][]bar) []byte {
	const panelW, rowH, barH, top = 330, 44, 16, 76
	rows, labelW := 0, 130
	for _, d := range data {
		rows = max(rows, len(d))
		for _, r := range d {
			labelW = max(labelW, 20+7*len(r.label))
		}
	}
	w, h := labelW+len(panels)*(panelW+20), top+rows*rowH+30
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(&b, `<rect x="10" y="30" width="12" height="12" fill="#9a9a9a"/><text x="26" y="41">%s</text>`, html.EscapeString(refName))
	fmt.Fprintf(&b, `<rect x="120" y="30" width="12" height="12" fill="#2a6fdb"/><text x="136" y="41">Petrel</text>`+"\n")
	for p, name := range panels {
		x0 := labelW + p*(panelW+20)
		var hi float64
		for _, r := range data[p] {
			hi = math.Max(hi, math.Max(r.ref, r.mine))
		}
		if hi == 0 {
			hi = 1
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, top-4, html.EscapeString(name))
		for i, r := range data[p] {
			y := top + i*rowH
			if p == 0 {
				fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", y+barH-2, html.EscapeString(r.label))
			}
			if r.note != "" {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555" font-size="10" text-anchor="end">%s</text>`+"\n",
					x0-6, y+2*barH+1, html.EscapeString(r.note))
			}
			for j, v := range []float64{r.ref, r.mine} {
				if r.solo && v == 0 {
					continue
				}
				color := []string{"#9a9a9a", "#2a6fdb"}[j]
				bw := int(v / hi * (panelW - 70))
				by := y + j*(barH+2)
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, x0, by, bw, barH, color)
				fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x0+bw+4, by+barH-4, short(v))
			}
		}
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func short(v float64) string {
	switch {
	case v == 0:
		return "n/a"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v < 10:
		return fmt.Sprintf("%.2f", v) // e.g. restart seconds
	}
	return fmt.Sprintf("%.0f", v)
}

func matrixSVG(s *Summary) []byte {
	var tp, p99, rss []bar
	for _, r := range s.Matrix {
		tp = append(tp, bar{label: r.Workload, ref: r.Memcached.OpsPerSec, mine: r.Petrel.OpsPerSec, note: ratioText(r.Throughput)})
		p99 = append(p99, bar{label: r.Workload, ref: r.Memcached.P99us, mine: r.Petrel.P99us, note: ratioText(r.P99)})
		rss = append(rss, bar{label: r.Workload, ref: r.Memcached.RSSKB / 1024, mine: r.Petrel.RSSKB / 1024, note: ratioText(r.RSS)})
	}
	title := fmt.Sprintf("%s: Petrel vs memcached (%d cores, %s)", s.Name, s.Machine.Cores, s.Date.Format("2006-01-02"))
	return barsSVG(title, "memcached", []string{"throughput, ops/s (higher is better)", "p99 latency, µs (lower is better)",
		"resident memory, MiB"}, [][]bar{tp, p99, rss})
}

func memorySVG(s *Summary) []byte {
	var ref, mine MemoryRow
	for _, r := range s.Memory {
		if r.Server == "memcached" {
			ref = r
		} else {
			mine = r
		}
	}
	label := fmt.Sprintf("%s items", short(float64(max(ref.Loaded, mine.Loaded))))
	return barsSVG(fmt.Sprintf("Memory: Twitter-like items into %d MiB", max(ref.LimitMB, mine.LimitMB)), "memcached",
		[]string{"RSS bytes per stored item (lower is better)", "overhead bytes per item (lower is better)", "items stored (higher is better)"},
		[][]bar{
			{{label: label, ref: ref.BytesPerItem, mine: mine.BytesPerItem, note: ratioText(mine.Ratio)}},
			{{label: label, ref: ref.Overhead, mine: mine.Overhead, note: ratioText(mine.OverheadRatio)}},
			{{label: label, ref: float64(ref.Stored), mine: float64(mine.Stored)}},
		})
}
