package main

import (
	"strings"
	"testing"
)

func TestDurableMarkdownTargets(t *testing.T) {
	s := &Summary{Durable: []DurableRow{
		{Server: "redis", Mode: "appendfsync always", Workload: "set c50", OpsPerSec: 10000, P99us: 2000},
		{Server: "petrel", Mode: "sync", Workload: "set c50", OpsPerSec: 25000, P99us: 3000, RecordsPerGroup: 12.5},
	}, Busy: &StorerBusy{Method: "m", Sides: []StorerBusySide{
		{Server: "petrel sync", Ratio: 0.95, BusyOps: 850}, {Server: "petrel off", Ratio: 0.8},
		{Server: "petrel sync, no storer", BusyOps: 1000}}}}
	md := durableMarkdown(s)
	f := func(want string) {
		t.Helper()
		if !strings.Contains(md, want) {
			t.Errorf("durable table lacks %q:\n%s", want, md)
		}
	}
	f("| set c50 | petrel | sync | 25000 | 0 | 3000 | 12.5 | – | 0 |")
	f("≥ 2× Redis always: **met**, 2.50×")
	f("p99 (50 connections): **missed**, 3000 vs 2000 µs")
	f("petrel sync: 0.95× (the control without durability under the same set load: 0.80×; durable/control 1.19×)")
	f("storer held off), petrel sync: **missed**, 0.85× (850 vs 1000 gets/s)")
	if svg := string(durableSVG(s)); !strings.Contains(svg, "set c50: sync / always") {
		t.Errorf("durable plot lacks the pair: %s", svg)
	}
}

func TestWarmDone(t *testing.T) {
	f := func(line, phase, mib, dur string) {
		t.Helper()
		m := warmDone.FindStringSubmatch(line)
		if m == nil || m[1] != phase || m[2] != mib || m[3] != dur {
			t.Errorf("warmDone(%q) = %q, want %s %s %s", line, m, phase, mib, dur)
		}
	}
	f("petrel: 2026/11/21 19:35:27 warm-up done: replaying journal: 5146/5146 records (100.0%), 0.8 MiB, 287914 records/s, ETA 0s in 18ms",
		"replaying journal", "0.8", "18ms")
	f("warm-up done: loading the store: 194854/194854 records (100.0%), 30.5 MiB, 684824 records/s, ETA 0s in 1.285s",
		"loading the store", "30.5", "1.285s")
	if warmDone.MatchString("warm-up: replaying journal: 10/20 records (50.0%), 0.1 MiB, 5 records/s, ETA 2s") {
		t.Error("warmDone matched a progress line")
	}
}

func TestCmdlogMarkdownTargets(t *testing.T) {
	s := &Summary{Cmdlog: &CmdlogBench{Modes: []CmdlogMode{
		{Mode: "off", OpsPerSec: 100, Ratio: 1, CPUusPerReq: 2, CPURatio: 1},
		{Mode: "sample100", OpsPerSec: 96, Ratio: 0.96, CPUusPerReq: 2.2, CPURatio: 1.1},
		{Mode: "sample1", OpsPerSec: 70, Ratio: 0.7, CPUusPerReq: 2.4, CPURatio: 1.2, LinesPerSec: 150e3, DropsTotal: 3, RequestsTotal: 1000},
	}}}
	md := cmdlogMarkdown(s)
	f := func(want string) {
		t.Helper()
		if !strings.Contains(md, want) {
			t.Errorf("cmdlog table lacks %q:\n%s", want, md)
		}
	}
	f("1 in 100 ≥ 0.95× off: **met** by throughput (0.960×); by CPU per request 1.100× off (≤ 1/0.95 = 1.053: **missed**)")
	f("every request ≥ 0.8× off: **missed** by throughput (0.700×); by CPU per request 1.200× off (≤ 1/0.8 = 1.25: **met**)")
	f("≥ 100k logged requests/s: **met**, 150000/s; 3 dropped of 1000 requests")
	if svg := string(cmdlogSVG(s)); !strings.Contains(svg, ">sample1<") {
		t.Errorf("cmdlog plot lacks a mode: %s", svg)
	}
}

func TestRestartMarkdown(t *testing.T) {
	s := &Summary{Restart: []RestartRow{
		{Server: "petrel", Mode: "async", Items: 1000000, DiskBytes: 300e6, RestartSeconds: 2, ItemsPerSec: 5e5, WarmupSeconds: 1.9, WarmupRecords: 42, JournalMiBps: 60, StoreMiBps: 150, LogLines: []string{"warm-up done: x"}},
		{Server: "redis", Mode: "appendfsync everysec", Items: 1000000, RestartSeconds: 1, ItemsPerSec: 1e6},
	}}
	md := restartMarkdown(s)
	for _, want := range []string{"| petrel | async | 1000000 | 300 |", "| 1.90 (42) | 150 | 60 |", "    warm-up done: x"} {
		if !strings.Contains(md, want) {
			t.Errorf("restart table lacks %q:\n%s", want, md)
		}
	}
	if svg := string(restartSVG(s)); !strings.Contains(svg, "1.00M items") || !strings.Contains(svg, "2.00x") {
		t.Errorf("restart plot lacks the pair: %s", svg)
	}
}
