package main

// `petrel serve` settings. One table drives every source: each option has
// memcached's short flag where memcached has one, a long flag, an
// environment variable PETREL_<KEY> and a TOML key <key> (the long flag with
// '_' for '-'). Sources apply in order file, env, flags, so a flag beats the
// environment, which beats the file, which beats the default.

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"petrel/internal/cache"
	"petrel/internal/server"
)

type option struct {
	short string // memcached's one-letter flag, or ""
	long  string // long flag; the TOML key and env name derive from it
	arg   string // metavariable; "" for a switch
	help  string
	set   func(c *server.Config, v string) error
}

func (o *option) key() string { return strings.ReplaceAll(o.long, "-", "_") }
func (o *option) env() string { return "PETREL_" + strings.ToUpper(o.key()) }

func intOpt(dst func(*server.Config) *int) func(*server.Config, string) error {
	return func(c *server.Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("want an integer, got %q", v)
		}
		*dst(c) = n
		return nil
	}
}

// durationOpt parses a non-negative Go duration; example goes in the error.
func durationOpt(example string, dst func(*server.Config) *time.Duration) func(*server.Config, string) error {
	return func(c *server.Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as %s, got %q", example, v)
		}
		*dst(c) = d
		return nil
	}
}

func strOpt(dst func(*server.Config) *string) func(*server.Config, string) error {
	return func(c *server.Config, v string) error { *dst(c) = v; return nil }
}

func boolOpt(dst func(*server.Config) *bool) func(*server.Config, string) error {
	return func(c *server.Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*dst(c) = b
		return nil
	}
}

// parseSize reads memcached's -I: bytes, or a number with a k or m suffix.
func parseSize(v string) (int, error) {
	v = strings.TrimSpace(v)
	mul := 1
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'k', 'K':
			mul, v = 1<<10, v[:n-1]
		case 'm', 'M':
			mul, v = 1<<20, v[:n-1]
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size such as 1048576, 512k or 1m, got %q", v)
	}
	return n * mul, nil
}

// parseSeconds reads a duration as memcached does (whole seconds) or in
// Go's notation ("1m30s").
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want seconds or a duration such as 90s, got %q", v)
	}
	return d, nil
}

var options []*option

func init() {
	options = []*option{
		{"p", "port", "NUM", "TCP port to listen on (default 11211; 0 disables TCP)", intOpt(func(c *server.Config) *int { return &c.Port })},
		{"U", "udp-port", "NUM", "UDP port to listen on (default 0, off)", intOpt(func(c *server.Config) *int { return &c.UDPPort })},
		{"s", "unix-socket", "FILE", "unix socket to listen on (disables TCP and UDP)", strOpt(func(c *server.Config) *string { return &c.UnixSocket })},
		{"a", "unix-mask", "MASK", "access mask for the unix socket, in octal (default 700)", func(c *server.Config, v string) error {
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return fmt.Errorf("want an octal mask, got %q", v)
			}
			c.UnixMask = uint32(m)
			return nil
		}},
		{"A", "enable-shutdown", "", "enable the ascii \"shutdown\" command", boolOpt(func(c *server.Config) *bool { return &c.EnableShutdown })},
		{"l", "listen", "ADDR", "comma list of addresses (host or host:port) to listen on (default 127.0.0.1; memcached: all interfaces)", strOpt(func(c *server.Config) *string { return &c.Listen })},
		{"d", "daemon", "", "run as a daemon (re-executes itself detached with setsid)", boolOpt(func(c *server.Config) *bool { return &c.Daemonize })},
		{"u", "user", "USER", "assume the identity of USER after binding (only when run as root)", strOpt(func(c *server.Config) *string { return &c.User })},
		{"m", "memory-limit", "MB", "item memory in megabytes (default 64; a g suffix means gigabytes)", func(c *server.Config, v string) error {
			v = strings.TrimSpace(v)
			mul := int64(1)
			if strings.HasSuffix(v, "g") || strings.HasSuffix(v, "G") {
				mul, v = 1024, v[:len(v)-1]
			} else if strings.HasSuffix(v, "m") || strings.HasSuffix(v, "M") {
				v = v[:len(v)-1]
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("want megabytes, got %q", v)
			}
			c.MemoryMB = n * mul
			return nil
		}},
		{"M", "disable-evictions", "", "return an error when memory is exhausted instead of evicting", boolOpt(func(c *server.Config) *bool { return &c.NoEvict })},
		{"c", "conn-limit", "NUM", "max simultaneous connections (default 1024)", intOpt(func(c *server.Config) *int { return &c.MaxConns })},
		{"v", "verbose", "", "verbose: -v errors and warnings, -vv also connections (repeatable; env/TOML take a number)", nil},
		{"P", "pidfile", "FILE", "write the process id to FILE (removed on exit)", strOpt(func(c *server.Config) *string { return &c.PidFile })},
		{"t", "threads", "NUM", "GOMAXPROCS (default: Go's choice, one per CPU; see docs)", intOpt(func(c *server.Config) *int { return &c.Threads })},
		{"R", "max-reqs-per-event", "NUM", "accepted for compatibility and reported in stats settings (default 20)", intOpt(func(c *server.Config) *int { return &c.ReqsPerEvent })},
		{"C", "disable-cas", "", "disable use of CAS", boolOpt(func(c *server.Config) *bool { return &c.NoCAS })},
		{"b", "listen-backlog", "NUM", "listen backlog (default 1024; Go uses the kernel's somaxconn)", intOpt(func(c *server.Config) *int { return &c.Backlog })},
		{"B", "protocol", "NAME", "protocol: ascii, binary or auto (default auto)", strOpt(func(c *server.Config) *string { return &c.Protocol })},
		{"I", "max-item-size", "SIZE", "max item size, with k or m suffix (default 1m, min 1k, max 1024m)", func(c *server.Config, v string) error {
			n, err := parseSize(v)
			c.MaxItemSize = n
			return err
		}},
		{"o", "extended", "LIST", "comma list of extended options (eviction=, idle_timeout=, segment_size=; memcached's others are ignored with a warning)", nil},
		{"", "eviction", "POLICY", "eviction policy: fifo, merge, random or none (default fifo)", func(c *server.Config, v string) error {
			p, err := cache.ParsePolicy(v)
			c.Eviction = p
			return err
		}},
		{"", "idle-timeout", "SECS", "close connections idle this long (default 0, never)", func(c *server.Config, v string) error {
			d, err := parseSeconds(v)
			c.IdleTimeout = d
			return err
		}},
		{"", "segment-size", "SIZE", "bytes per cache segment, with k or m suffix (default 1m)", func(c *server.Config, v string) error {
			n, err := parseSize(v)
			c.SegmentSize = n
			return err
		}},
		{"", "shutdown-grace", "SECS", "how long a graceful shutdown waits for in-flight requests (default 5)", func(c *server.Config, v string) error {
			d, err := parseSeconds(v)
			c.ShutdownGrace = d
			return err
		}},
		{"", "admin", "ADDR", "admin HTTP address for /metrics and /debug/pprof (default 127.0.0.1:11212; empty disables)", strOpt(func(c *server.Config) *string { return &c.AdminAddr })},
		{"", "data-dir", "DIR", "keep data in DIR: the journal in DIR/journal, storage in DIR/pebble (default none: nothing is kept)", strOpt(func(c *server.Config) *string { return &c.Durable.DataDir })},
		{"", "durability", "MODE", "sync (acknowledge after fdatasync; the default with --data-dir), async (after the write; fdatasync every --journal-sync-interval) or off (the default without --data-dir)", strOpt(func(c *server.Config) *string { return &c.Durable.Mode })},
		{"", "journal-segment-size", "SIZE", "journal file size before a new one is started, with k or m suffix (default 64m)", func(c *server.Config, v string) error {
			n, err := parseSize(v)
			c.Durable.JournalSegmentSize = int64(n)
			return err
		}},
		{"", "journal-max-delay", "DURATION", "wait up to this long for a journal group to fill before writing it (default 0: no added delay)", durationOpt("200us or 2ms", func(c *server.Config) *time.Duration { return &c.Durable.JournalMaxDelay })},
		{"", "journal-sync-interval", "DURATION", "async durability: fdatasync the journal this often (default 1s)", func(c *server.Config, v string) error {
			d, err := parseSeconds(v)
			c.Durable.SyncInterval = d
			return err
		}},
		{"", "journal-retry", "DURATION", "after a disk error, retry the journal this often and resume writes once it proves intact (default 5s; 0: never, restart instead)", durationOpt("5s or 0", func(c *server.Config) *time.Duration { return &c.Durable.JournalRetry })},
		{"", "repair", "", "start even over mid-journal corruption, cutting the journal there (loses what follows), or with a journal that ends below what the store holds (removed: it restarts after the store; see docs/durability.md)", boolOpt(func(c *server.Config) *bool { return &c.Durable.Repair })},
		{"", "accept-during-warmup", "", "open the listeners before the memory tier is loaded (requests on keys not loaded yet wait for the load)", boolOpt(func(c *server.Config) *bool { return &c.Durable.AcceptDuringWarmup })},
		{"", "backend", "NAME", "storage backend the journal is applied to: pebble (embedded, in DIR/pebble; the default), postgres or dynamodb (see docs/backends.md)", strOpt(func(c *server.Config) *string { return &c.Durable.Backend.Kind })},
		{"", "postgres-dsn", "DSN", "--backend=postgres: libpq connection string or URL (default: the PG* environment variables)", strOpt(func(c *server.Config) *string { return &c.Durable.Backend.PostgresDSN })},
		{"", "postgres-table", "NAME", "--backend=postgres: the items table (default petrel_items)", strOpt(func(c *server.Config) *string { return &c.Durable.Backend.PostgresTable })},
		{"", "dynamodb-table", "NAME", "--backend=dynamodb: the table, created when missing (default petrel)", strOpt(func(c *server.Config) *string { return &c.Durable.Backend.DynamoTable })},
		{"", "dynamodb-region", "REGION", "--backend=dynamodb: AWS region (default: the AWS config chain)", strOpt(func(c *server.Config) *string { return &c.Durable.Backend.DynamoRegion })},
		{"", "dynamodb-endpoint", "URL", "--backend=dynamodb: endpoint, e.g. http://127.0.0.1:8000 for dynalite or DynamoDB Local (default: AWS's)", strOpt(func(c *server.Config) *string { return &c.Durable.Backend.DynamoEndpoint })},
		{"", "backend-mode", "MODE", "write-behind (acknowledge once the journal is durable; the default) or write-through (once the backend has applied the write)", strOpt(func(c *server.Config) *string { return &c.Durable.Backend.Mode })},
		{"", "read-through", "on|off", "on: a miss in memory reads the backend and caches what it finds (default off)", func(c *server.Config, v string) error {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "on", "true", "1", "yes":
				c.Durable.Backend.ReadThrough = true
			case "off", "false", "0", "no":
				c.Durable.Backend.ReadThrough = false
			default:
				return fmt.Errorf("want on or off, got %q", v)
			}
			return nil
		}},
		{"", "negative-cache-ttl", "DURATION", "read-through: remember that the backend has no such key for this long (default 0: never)", durationOpt("5s", func(c *server.Config) *time.Duration { return &c.Durable.Backend.NegativeTTL })},
		{"", "backend-batch-delay", "DURATION", "write-behind: how long the storer gathers writes into a batch once it has caught up (default 2ms for pebble, 20ms for postgres and dynamodb)", durationOpt("20ms", func(c *server.Config) *time.Duration { return &c.Durable.Backend.BatchDelay })},
		{"", "backlog-limit", "SIZE", "refuse mutations with SERVER_ERROR while the backend lags the journal by more than SIZE bytes, k or m suffix (default 0: no limit)", func(c *server.Config, v string) error {
			n, err := parseSize(v)
			c.Durable.Backend.BacklogLimit = int64(n)
			return err
		}},
		{"", "backend-timeout", "DURATION", "the deadline of each storer call to postgres or dynamodb (then retried) and of each request opening it at start, and, with any backend, how long a write-through reply waits for it before its connection is closed unacknowledged (default 30s)", durationOpt("30s", func(c *server.Config) *time.Duration { return &c.Durable.Backend.Timeout })},
		{"", "cmdlog", "DEST", "command log: a file, udp://host:port or tcp://host:port (default off; see docs/cmdlog.md)", strOpt(func(c *server.Config) *string { return &c.Cmdlog.Path })},
		{"", "cmdlog-sample", "N", "log 1 request in N per connection (default 1: every request)", intOpt(func(c *server.Config) *int { return &c.Cmdlog.Sample })},
		{"", "cmdlog-max-size", "SIZE", "rotate the command log file past SIZE bytes, k or m suffix (default 0: never)", func(c *server.Config, v string) error {
			n, err := parseSize(v)
			c.Cmdlog.MaxSize = int64(n)
			return err
		}},
		{"", "cmdlog-keep", "N", "rotated command log files kept, DEST.1 .. DEST.N (default 4)", intOpt(func(c *server.Config) *int { return &c.Cmdlog.Keep })},
		{"", "cmdlog-hash-keys", "", "log a 64-bit hash of each key instead of the key", boolOpt(func(c *server.Config) *bool { return &c.Cmdlog.HashKeys })},
		{"", "cmdlog-paused", "", "configure --cmdlog without logging until `cmdlog on` or POST /cmdlog?enable=1", boolOpt(func(c *server.Config) *bool { return &c.Cmdlog.Paused })},
		{"", "analysis-dir", "DIR", "the status page shows DIR/mrc.svg, written by `petrel analyze --out DIR`", strOpt(func(c *server.Config) *string { return &c.AnalysisDir })},
		{"", "config", "FILE", "TOML configuration file", nil},
		{"h", "help", "", "print this help and exit", nil},
		{"V", "version", "", "print the version and exit", nil},
	}
	for _, o := range options {
		if o.short != "" {
			byName[o.short] = o
		}
		byName[o.long] = o
	}
	byName["v"].set = func(c *server.Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a verbosity level, got %q", v)
		}
		c.Verbose = n
		return nil
	}
	byName["o"].set = func(c *server.Config, v string) error { return applyExtended(c, v, os.Stderr) }
}

// byName indexes options by short and long name.
var byName = map[string]*option{}

// memcachedExtended are memcached's -o options that Petrel accepts and
// ignores (it has no slabs, LRU crawler, extstore or TLS).
var memcachedExtended = map[string]bool{
	"maxconns_fast": true, "hashpower": true, "tail_repair_time": true, "hash_algorithm": true,
	"lru_crawler": true, "lru_crawler_sleep": true, "lru_crawler_tocrawl": true,
	"read_buf_mem_limit": true, "lru_maintainer": true, "hot_lru_pct": true, "warm_lru_pct": true,
	"hot_max_factor": true, "warm_max_factor": true, "temporary_ttl": true, "slab_chunk_max": true,
	"watcher_logbuf_size": true, "worker_logbuf_size": true, "track_sizes": true, "hashexpand": true,
	"modern": true, "sock_cookie_id": true, "slab_reassign": true, "slab_automove": true,
	"slab_automove_ratio": true, "slab_automove_window": true, "slab_automove_freeratio": true,
	"lru_segmented": true, "inline_ascii_resp": true, "no_modern": true,
	"ext_path": true, "ext_page_size": true, "ext_wbuf_size": true, "ext_threads": true,
	"ext_item_size": true, "ext_item_age": true, "ext_low_ttl": true, "ext_drop_unread": true,
	"ext_recache_rate": true, "ext_compact_under": true, "ext_drop_under": true, "ext_max_frag": true,
	"ext_max_sleep": true, "ssl_chain_cert": true, "ssl_key": true, "ssl_keyformat": true,
	"ssl_verify_mode": true, "ssl_ciphers": true, "ssl_ca_cert": true, "ssl_wbuf_size": true,
	"ssl_session_cache": true, "ssl_kernel_tls": true, "ssl_min_version": true,
	"proxy_config": true, "proxy_uring": true, "drop_privileges": true, "num_napi_ids": true,
	"memory_file": true, "verbose": true,
}

// applyExtended applies a -o list. Petrel's own entries set the config;
// memcached's are ignored with a warning; anything else is an error.
func applyExtended(c *server.Config, list string, warn io.Writer) error {
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, _ := strings.Cut(item, "=")
		switch name {
		case "eviction", "idle_timeout", "segment_size", "shutdown_grace":
			o := byName[strings.ReplaceAll(name, "_", "-")]
			if err := o.set(c, val); err != nil {
				return fmt.Errorf("-o %s: %w", name, err)
			}
			continue
		}
		if memcachedExtended[name] || memcachedExtended[strings.TrimPrefix(name, "no_")] {
			fmt.Fprintf(warn, "petrel: ignoring unsupported option %s\n", item)
			continue
		}
		return fmt.Errorf("-o: unknown option %q", name)
	}
	return nil
}

// setting is one value from one source.
type setting struct {
	opt *option
	val string
}

// cmdline is what the command line asked for besides settings.
type cmdline struct {
	help, version bool
	configFile    string
	flags         []setting
}

// parseArgs reads memcached-style arguments: -p 11211, -p11211, -vv, -dM,
// --port 11211, --port=11211, --daemon, --daemon=false.
func parseArgs(args []string) (cmdline, error) {
	var cl cmdline
	add := func(o *option, v string) {
		switch o.long {
		case "help":
			cl.help = true
		case "version":
			cl.version = true
		case "config":
			cl.configFile = v
		default:
			cl.flags = append(cl.flags, setting{o, v})
		}
	}
	verbose := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, val, hasVal := strings.Cut(a[2:], "=")
			o := byName[name]
			if o == nil || len(name) == 1 {
				return cl, fmt.Errorf("unknown flag --%s", name)
			}
			if o.arg == "" {
				if o.long == "verbose" && !hasVal {
					verbose++
					add(o, strconv.Itoa(verbose))
					continue
				}
				if !hasVal {
					val = "true"
				}
				add(o, val)
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return cl, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				val = args[i]
			}
			add(o, val)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				o := byName[a[j:j+1]]
				if o == nil || o.short == "" {
					return cl, fmt.Errorf("unknown flag -%c", a[j])
				}
				if o.arg == "" {
					if o.short == "v" {
						verbose++
						add(o, strconv.Itoa(verbose))
					} else {
						add(o, "true")
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return cl, fmt.Errorf("flag -%s needs a value", o.short)
					}
					i++
					val = args[i]
				}
				add(o, val)
				break
			}
		default:
			return cl, fmt.Errorf("unexpected argument %q", a)
		}
	}
	return cl, nil
}

// loadConfig layers default < file < env < flags. getenv is os.LookupEnv in
// production and a map in tests.
func loadConfig(args []string, getenv func(string) (string, bool), warn io.Writer) (server.Config, cmdline, error) {
	cfg := server.DefaultConfig()
	cl, err := parseArgs(args)
	if err != nil {
		return cfg, cl, err
	}
	file := cl.configFile
	if file == "" {
		file, _ = getenv("PETREL_CONFIG")
	}
	if file != "" {
		if err := applyFile(&cfg, file); err != nil {
			return cfg, cl, err
		}
	}
	for _, o := range options {
		if o.set == nil {
			continue
		}
		if v, ok := getenv(o.env()); ok {
			set := o.set
			if o.long == "extended" {
				set = func(c *server.Config, v string) error { return applyExtended(c, v, warn) }
			}
			if err := set(&cfg, v); err != nil {
				return cfg, cl, fmt.Errorf("%s: %w", o.env(), err)
			}
		}
	}
	for _, s := range cl.flags {
		if s.opt.long == "extended" {
			if err := applyExtended(&cfg, s.val, warn); err != nil {
				return cfg, cl, err
			}
			continue
		}
		if err := s.opt.set(&cfg, s.val); err != nil {
			return cfg, cl, fmt.Errorf("--%s: %w", s.opt.long, err)
		}
	}
	return cfg, cl, cfg.Validate()
}

// applyFile applies a TOML file whose keys are the options' keys.
func applyFile(cfg *server.Config, path string) error {
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors
	for _, k := range keys {
		o := byName[strings.ReplaceAll(k, "_", "-")]
		if o == nil || o.set == nil || o.key() != k {
			return fmt.Errorf("config file %s: unknown key %q", path, k)
		}
		var v string
		switch x := m[k].(type) {
		case string:
			v = x
		case bool, int64, float64:
			v = fmt.Sprint(x)
		default:
			return fmt.Errorf("config file %s: key %q: unsupported value %v", path, k, x)
		}
		if err := o.set(cfg, v); err != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, k, err)
		}
	}
	return nil
}

// printUsage lists every flag with its environment variable.
func printUsage(w io.Writer) {
	fmt.Fprintf(w, "petrel serve %s: a memcached-compatible cache server\n\nusage: petrel serve [flags]\n\n", version)
	for _, o := range options {
		name := "    "
		if o.short != "" {
			name = "-" + o.short + ", "
		}
		name += "--" + o.long
		if o.arg != "" {
			name += "=" + o.arg
		}
		env := ""
		if o.set != nil {
			env = " [" + o.env() + "]"
		}
		fmt.Fprintf(w, "  %-30s %s%s\n", name, o.help, env)
	}
	fmt.Fprint(w, "\nPrecedence: flag > environment > config file (--config or PETREL_CONFIG; TOML, keys as the long flags with _ for -) > default.\nSee docs/configuration.md.\n")
}
