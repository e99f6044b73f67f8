package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// profileWorkload runs one workload on Petrel with its admin listener on and
// saves CPU, block and mutex profiles taken while it runs, plus a `go tool
// pprof -top` of the CPU profile: what limits Petrel, next to the numbers.
// Block and mutex profiles are empty unless the server sets their rates.
func profileWorkload(o *options, file, name string) []string {
	dir := filepath.Join(o.out, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []string{err.Error()}
	}
	adminPort, err := freePort()
	if err != nil {
		return []string{err.Error()}
	}
	admin := "127.0.0.1:" + strconv.Itoa(adminPort)
	s, err := start("petrel", o.petrel, func(p int) []string {
		return append(petrelArgs(o, p, o.memoryMB, o.petrelArgs), "--admin="+admin)
	})
	if err != nil {
		return []string{err.Error()}
	}
	defer s.stop()
	secs := max(1, int(o.duration.Seconds())-1)
	var fails []string
	done := make(chan error, 1)
	go func() {
		_, err := client(o, s, name+"-profiled", 0, "-config", file, "-duration", o.duration.String())
		done <- err
	}()
	time.Sleep(time.Second) // past the preload, roughly
	logf("profiling petrel on %s for %ds", name, secs)
	for _, p := range []struct{ file, path string }{
		{"cpu.pprof", fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)},
		{"block.pprof", "/debug/pprof/block"},
		{"mutex.pprof", "/debug/pprof/mutex"},
	} {
		if err := fetch("http://"+admin+p.path, filepath.Join(dir, name+"-"+p.file)); err != nil {
			fails = append(fails, err.Error())
		}
	}
	if err := <-done; err != nil {
		fails = append(fails, err.Error())
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", o.petrel,
		filepath.Join(dir, name+"-cpu.pprof")).CombinedOutput()
	if err != nil {
		fails = append(fails, fmt.Sprintf("pprof -top: %v", err))
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-cpu-top.txt"), top, 0o644); err != nil {
		fails = append(fails, err.Error())
	}
	return fails
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	return f.Close()
}
