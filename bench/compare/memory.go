package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// The item sizes of the memory benchmark. Fixed sizes (-memory-key-size 36
// -memory-value 224) compare with REFERENCE.md's memcached figure of 387 B
// of RSS per item.
var (
	memoryKeySize = flag.String("memory-key-size", "twitter-key", "key size distribution for the memory benchmark (petrel bench -key-size syntax)")
	memoryValue   = flag.String("memory-value", "twitter-value", "value size distribution for the memory benchmark (petrel bench -value syntax)")
)

// MemoryRow is one server in the memory benchmark.
type MemoryRow struct {
	Server        string  `json:"server"`
	Command       string  `json:"command"`
	ServerCmd     string  `json:"server_command"`
	LimitMB       int     `json:"limit_mb"`
	Loaded        int64   `json:"loaded"`        // sets acknowledged
	Stored        int64   `json:"stored"`        // keys a scan found afterwards
	CurrItems     int64   `json:"curr_items"`    // the server's own count
	Payload       int64   `json:"payload_bytes"` // key and value bytes of the stored items
	Bytes         int64   `json:"bytes"`         // the server's own "bytes" stat
	RSSKB         int64   `json:"rss_kb"`
	BytesPerItem  float64 `json:"rss_bytes_per_item"`
	Overhead      float64 `json:"overhead_per_item"` // (RSS - payload) / stored
	Ratio         float64 `json:"ratio,omitempty"`   // Petrel/memcached bytes per item
	OverheadRatio float64 `json:"overhead_ratio,omitempty"`
	LoadSeconds   float64 `json:"load_seconds"`
	Errors        int64   `json:"errors"`
}

// memoryBench loads the same items (Twitter-like sizes unless
// -memory-key-size and -memory-value say otherwise) into each server in
// turn, with the same memory limit, and measures resident memory per item
// actually stored. A scan then reads every key back, so "stored" is what a
// client would find, and the payload of those items is known exactly: the
// overhead per item does not depend on which items each server chose to keep.
func memoryBench(o *options) ([]MemoryRow, []string) {
	var rows []MemoryRow
	var fails []string
	var admin string
	for _, name := range []string{"memcached", "petrel"} {
		var s *server
		var err error
		if name == "memcached" {
			s, err = start(name, o.memcached, func(p int) []string { return memcachedArgs(o, p, o.memoryMB2) })
		} else {
			// The admin listener is on, for a heap profile once loaded.
			var adminPort int
			if adminPort, err = freePort(); err == nil {
				admin = "127.0.0.1:" + strconv.Itoa(adminPort)
				s, err = start(name, o.petrel, func(p int) []string {
					return append(petrelArgs(o, p, o.memoryMB2, o.petrelArgs), "--admin="+admin)
				})
			}
		}
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		logf("memory: loading %d items into %s", o.memoryItems, name)
		r, err := client(o, s, "memory", 0, "-name", "memory", "-preload", "-duration", "0",
			"-keys", strconv.Itoa(o.memoryItems), "-key-size", *memoryKeySize, "-value", *memoryValue,
			"-scan", "-conns", "16", "-depth", "32", "-prefix", "m:")
		if err != nil {
			fails = append(fails, err.Error())
			s.stop()
			continue
		}
		row := MemoryRow{Server: name, Command: r.Command, ServerCmd: s.command(), LimitMB: o.memoryMB2, RSSKB: r.RSSKB}
		if p := r.Result.Preload; p != nil {
			row.Loaded, row.LoadSeconds = p.Requests, p.Seconds
			for _, n := range p.Errors {
				row.Errors += n
			}
			row.Loaded -= row.Errors
		}
		st, err := s.stats()
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v", name, err))
		}
		row.CurrItems, _ = strconv.ParseInt(st["curr_items"], 10, 64)
		row.Bytes, _ = strconv.ParseInt(st["bytes"], 10, 64)
		if p := r.Result.Scan; p != nil {
			row.Stored, row.Payload = p.Found, p.FoundBytes
		}
		if row.Stored > 0 {
			row.BytesPerItem = float64(row.RSSKB) * 1024 / float64(row.Stored)
			row.Overhead = (float64(row.RSSKB)*1024 - float64(row.Payload)) / float64(row.Stored)
		}
		logf("memory: %s stored %d of %d, rss %d MiB, %.0f B/item", name, row.Stored, row.Loaded, row.RSSKB>>10, row.BytesPerItem)
		if name == "petrel" {
			fails = append(fails, heapProfile(o, admin)...)
		}
		rows = append(rows, row)
		s.stop()
	}
	if len(rows) == 2 && rows[0].BytesPerItem > 0 {
		rows[1].Ratio = rows[1].BytesPerItem / rows[0].BytesPerItem
		rows[1].OverheadRatio = rows[1].Overhead / rows[0].Overhead
	}
	return rows, fails
}

// heapProfile saves Petrel's heap profile after the load, and the top of its
// in-use space: where the memory outside the item segments goes.
func heapProfile(o *options, admin string) []string {
	dir := filepath.Join(o.out, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []string{err.Error()}
	}
	file := filepath.Join(dir, "memory-heap.pprof")
	if err := fetch("http://"+admin+"/debug/pprof/heap", file); err != nil {
		return []string{err.Error()}
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=25", o.petrel, file).CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("pprof -top: %v", err)}
	}
	if err := os.WriteFile(filepath.Join(dir, "memory-heap-top.txt"), top, 0o644); err != nil {
		return []string{err.Error()}
	}
	return nil
}
