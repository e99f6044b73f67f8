package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"petrel/internal/analyze"
	"petrel/internal/cache"
)

// analyzeMain runs `petrel analyze LOG…`: command logs in, a workload
// report (text or JSON) out, and with --out the pictures.
func analyzeMain(args []string) error {
	fs := flag.NewFlagSet("petrel analyze", flag.ContinueOnError)
	var cfg analyze.Config
	fs.Float64Var(&cfg.Rate, "rate", 0, "sample keys at this fixed rate in (0,1] (1 = every key, exact); 0 = fixed-size sampling")
	fs.IntVar(&cfg.MaxKeys, "max-keys", 65536, "fixed-size sampling: keep at most this many keys (the rate halves as needed)")
	policy := fs.String("eviction", "fifo", "Petrel eviction policy to simulate: fifo, merge, random or none")
	fs.IntVar(&cfg.SegmentSize, "segment-size", 1<<20, "Petrel segment size to simulate, bytes")
	simMem := fs.Int64("sim-memory", 32<<20, "largest simulated (sampled, scaled-down) cache in bytes; 0 turns the Petrel simulation off")
	fs.Int64Var(&cfg.Interval, "interval", 60, "seconds per timeline window and heat-map column")
	fs.IntVar(&cfg.TopKeys, "top", 20, "hottest keys to report")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	out := fs.String("out", "", "write report.json, report.txt, mrc.svg, sizes.svg, heatmap.svg and PNG versions to this directory")
	quiet := fs.Bool("q", false, "no progress output on stderr")
	synth := fs.Int("synth", 0, "") // hidden: write a synthetic Zipf log of this many lines to stdout
	synthKeys := fs.Uint64("synth-keys", 1000000, "")
	synthItems := fs.Int("synth-cache-items", 0, "")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: petrel analyze [flags] LOG... (\"-\" reads stdin; .gz is decompressed)\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Usage == "" {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(fs.Output(), "  --%s %s\n    \t%s (default %s)\n", f.Name, name, usage, f.DefValue)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *synth > 0 {
		return analyze.Synth(os.Stdout, analyze.SynthConfig{Lines: *synth, Keys: *synthKeys, CacheItems: *synthItems, Seed: 1})
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no log files given")
	}
	p, err := cache.ParsePolicy(*policy)
	if err != nil {
		return err
	}
	cfg.Policy = p
	cfg.SimMemory = *simMem
	if *simMem == 0 {
		cfg.SimMemory = -1
	}
	a, err := analyze.New(cfg)
	if err != nil {
		return err
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	if err := a.ReadFiles(fs.Args(), progress); err != nil {
		return err
	}
	rep, err := a.Report()
	if err != nil {
		return err
	}
	if *out != "" {
		if err := rep.WriteDir(*out); err != nil {
			return err
		}
	}
	if *asJSON {
		return rep.WriteJSON(os.Stdout)
	}
	return rep.WriteText(os.Stdout)
}
