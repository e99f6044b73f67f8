package bench

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config describes one workload. Every field can be set by a flag of the same
// name (in kebab case) or by a TOML file, so that a comparison is a list of
// workload files; flags given on the command line override the file.
type Config struct {
	Name     string        `toml:"name"`     // label in reports
	Server   string        `toml:"server"`   // host:port, or "null" for an in-process trivial server
	Protocol string        `toml:"protocol"` // text | meta | resp
	Conns    int           `toml:"conns"`    // connections in all
	Threads  int           `toml:"threads"`  // GOMAXPROCS for the generator
	Depth    int           `toml:"depth"`    // requests in flight per connection
	Duration time.Duration `toml:"duration"` // how long to measure (0: until Ops)
	Ops      int64         `toml:"ops"`      // operations to measure (0: until Duration)
	Preload  bool          `toml:"preload"`  // set every key once before measuring
	Scan     bool          `toml:"scan"`     // after the preload, get every key once and count what is left

	Keys     int     `toml:"keys"`      // size of the key space
	Zipf     float64 `toml:"zipf"`      // Zipf exponent of key popularity; 0 is uniform
	KeySize  string  `toml:"key_size"`  // distribution (see ParseDist)
	Value    string  `toml:"value"`     // value size distribution
	TTL      string  `toml:"ttl"`       // TTL distribution in seconds
	MaxValue int     `toml:"max_value"` // clamp for value sizes
	Prefix   string  `toml:"prefix"`    // key prefix

	Ratio    string  `toml:"ratio"`    // get:set, e.g. "10:1"
	Delete   float64 `toml:"delete"`   // share of all operations that delete
	Incr     float64 `toml:"incr"`     // share of all operations that incr a counter
	MultiGet int     `toml:"multiget"` // keys per get

	Verify bool   `toml:"verify"` // check every value read against what was written
	Seed   int64  `toml:"seed"`
	JSON   string `toml:"json"`  // write the result here
	Quiet  bool   `toml:"quiet"` // no progress lines

	// derived by Check
	keyDist, valDist, ttlDist Dist
	getShare, setShare        float64
}

// Default is the workload used when nothing is said: memtier's defaults,
// roughly (10:1 get:set, 100 B values, 50 connections, no pipelining).
func Default() Config {
	return Config{
		Name: "default", Server: "127.0.0.1:11211", Protocol: "text",
		Conns: 50, Threads: min(4, runtime.NumCPU()), Depth: 1, Duration: 10 * time.Second,
		Keys: 100000, KeySize: "fixed:16", Value: "fixed:100", TTL: "0",
		MaxValue: 1<<20 - 512, Prefix: "b:", Ratio: "10:1", MultiGet: 1, Seed: 1,
	}
}

// Flags binds c's fields to a flag set.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Name, "name", c.Name, "workload name for reports")
	fs.StringVar(&c.Server, "server", c.Server, `server address host:port, or "null" for an in-process trivial server`)
	fs.StringVar(&c.Protocol, "protocol", c.Protocol, "text, meta or resp")
	fs.IntVar(&c.Conns, "conns", c.Conns, "connections")
	fs.IntVar(&c.Threads, "threads", c.Threads, "generator threads (GOMAXPROCS)")
	fs.IntVar(&c.Depth, "depth", c.Depth, "pipeline depth per connection")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measuring time (0 with -ops: run for -ops operations)")
	fs.Int64Var(&c.Ops, "ops", c.Ops, "operations to measure (0: run for -duration)")
	fs.BoolVar(&c.Preload, "preload", c.Preload, "set every key once before measuring")
	fs.BoolVar(&c.Scan, "scan", c.Scan, "after the preload, get every key once and count what the server kept")
	fs.IntVar(&c.Keys, "keys", c.Keys, "key space size")
	fs.Float64Var(&c.Zipf, "zipf", c.Zipf, "Zipf exponent of key popularity (0: uniform)")
	fs.StringVar(&c.KeySize, "key-size", c.KeySize, "key size distribution: N, fixed:N, uniform:A,B, loguniform:A,B, gev:MU,SIGMA,K, gpd:THETA,SIGMA,K, etc-key, twitter-key")
	fs.StringVar(&c.Value, "value", c.Value, "value size distribution (as -key-size, plus etc-value, twitter-value)")
	fs.StringVar(&c.TTL, "ttl", c.TTL, "TTL distribution in seconds (as -key-size, plus twitter-ttl)")
	fs.IntVar(&c.MaxValue, "max-value", c.MaxValue, "largest value size")
	fs.StringVar(&c.Prefix, "prefix", c.Prefix, "key prefix")
	fs.StringVar(&c.Ratio, "ratio", c.Ratio, "get:set ratio")
	fs.Float64Var(&c.Delete, "delete", c.Delete, "share of operations that are deletes")
	fs.Float64Var(&c.Incr, "incr", c.Incr, "share of operations that are incrs of counter keys")
	fs.IntVar(&c.MultiGet, "multiget", c.MultiGet, "keys per get")
	fs.BoolVar(&c.Verify, "verify", c.Verify, "verify every value read against a checksum of what was written")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.StringVar(&c.JSON, "json", c.JSON, "write the result as JSON to this file")
	fs.BoolVar(&c.Quiet, "quiet", c.Quiet, "no progress lines")
}

// ParseArgs builds a Config from command-line arguments: defaults, then the
// TOML file named by -config, then the flags given explicitly.
func ParseArgs(name string, args []string) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("config", "", "TOML workload file; explicit flags override it")
	c.Flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\n"+
			"Drive a memcached-protocol server (or Redis, -protocol resp) and report\n"+
			"throughput, hit ratio, errors and latency percentiles. See docs/performance.md.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *file != "" {
		set := map[string]string{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
		if err := c.Load(*file); err != nil {
			return c, err
		}
		for k, v := range set {
			if err := fs.Set(k, v); err != nil {
				return c, fmt.Errorf("flag -%s: %w", k, err)
			}
		}
	}
	return c, c.Check()
}

// Load reads a TOML workload file over c.
func (c *Config) Load(path string) error {
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		return fmt.Errorf("workload %s: %w", path, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		return fmt.Errorf("workload %s: unknown keys %v", path, un)
	}
	return nil
}

// Check validates c and derives its distributions.
func (c *Config) Check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Protocol {
	case "text", "meta", "resp":
	default:
		bad("protocol %q: want text, meta or resp", c.Protocol)
	}
	if c.Conns < 1 || c.Depth < 1 || c.Threads < 1 || c.Keys < 1 || c.MultiGet < 1 {
		bad("conns, depth, threads, keys and multiget must be at least 1")
	}
	if c.Duration <= 0 && c.Ops <= 0 && !c.Preload && !c.Scan {
		bad("need a -duration, -ops, -preload or -scan")
	}
	if c.Zipf < 0 {
		bad("zipf exponent %v < 0", c.Zipf)
	}
	var err error
	if c.keyDist, err = ParseDist(c.KeySize); err != nil {
		bad("key-size: %w", err)
	}
	if c.valDist, err = ParseDist(c.Value); err != nil {
		bad("value: %w", err)
	}
	if c.ttlDist, err = ParseDist(c.TTL); err != nil {
		bad("ttl: %w", err)
	}
	g, s, err := parseRatio(c.Ratio)
	if err != nil {
		bad("ratio: %w", err)
	}
	if c.Delete < 0 || c.Incr < 0 || c.Delete+c.Incr > 1 {
		bad("delete and incr shares must be in [0,1] and sum to at most 1")
	}
	rest := 1 - c.Delete - c.Incr
	if g+s > 0 {
		c.getShare, c.setShare = rest*g/(g+s), rest*s/(g+s)
	}
	if c.Verify && c.Conns > c.Keys {
		bad("verify mode splits the keys among connections: need keys >= conns")
	}
	return errors.Join(errs...)
}

func parseRatio(s string) (get, set float64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want GET:SET", s)
	}
	if get, err = strconv.ParseFloat(a, 64); err != nil {
		return 0, 0, fmt.Errorf("%q: %w", s, err)
	}
	if set, err = strconv.ParseFloat(b, 64); err != nil {
		return 0, 0, fmt.Errorf("%q: %w", s, err)
	}
	if get < 0 || set < 0 {
		return 0, 0, fmt.Errorf("%q: negative", s)
	}
	return get, set, nil
}
