package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// storerMain runs `petrel storer --data-dir DIR`: the storer as its own
// process. With a server holding the journal it follows the journal files
// until interrupted (or, with --once, until it has caught up with what was
// there at start); with no server it applies the journal and exits.
func storerMain(args []string) error {
	fs := flag.NewFlagSet("petrel storer", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory (DIR/journal, DIR/pebble; see docs/storage.md)")
	follow := fs.Bool("follow", false, "follow the journal files even when no server runs yet (start the storer before the server to run it off the serving process)")
	once := fs.Bool("once", false, "following a server's journal: exit once caught up with its end at start")
	poll := fs.Duration("poll", 50*time.Millisecond, "following a server's journal: how often to look for new records")
	var opts storage.StorerOptions
	fs.IntVar(&opts.MaxBatchRecords, "batch-records", 4096, "records per batch applied")
	fs.IntVar(&opts.MaxBatchBytes, "batch-bytes", 4<<20, "bytes per batch applied")
	fs.Int64Var(&opts.FlushBytes, "flush-bytes", 64<<20, "flush Pebble (making applied records durable, letting the journal shrink) after this many bytes")
	fs.DurationVar(&opts.FlushInterval, "flush-interval", 10*time.Second, "and at least this often while applying")
	fs.Float64Var(&opts.CPUShare, "cpu-share", 1, "fraction of one core the apply loop may use (0,1]")
	quiet := fs.Bool("q", false, "no progress output")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *dataDir == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("--data-dir is required, and nothing else")
	}
	logf := progressLogf(*quiet)
	opts.Logf = logf
	ctx, stop := stopContext(logf)
	defer stop()

	lock, err := storage.LockStorer(*dataDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := storage.CheckRestore(*dataDir); err != nil {
		return err
	}
	if err := storage.RemoveStorerProgress(*dataDir); err != nil {
		return err
	}
	p, err := storage.OpenPebble(storage.PebbleDir(*dataDir), storage.PebbleOptions{
		ErrorLogf: progressLogf(false),
		OnFatal: func(msg string) {
			// As the server does (backend_open.go): a sentence, not a
			// panic's page of goroutines; the journal keeps everything.
			fmt.Fprintf(os.Stderr, "petrel storer: STORE FAILED: pebble: %s. Exiting: the journal keeps every record the store lacks; if the disk under %s is full, free space first.\n", msg, *dataDir)
			os.Exit(1)
		},
	})
	if err != nil {
		return err
	}
	applied, _ := p.AppliedSeq(ctx)
	logf("pebble %s: applied sequence %d", storage.PebbleDir(*dataDir), applied)

	if jl, err := storage.LockJournal(*dataDir); err != nil || *follow {
		if jl != nil {
			jl.Unlock()
		}
	} else {
		// No server: the journal is ours to recover, apply and truncate.
		defer jl.Unlock()
		j, err := journal.Open(journal.Options{Dir: storage.JournalDir(*dataDir), Logf: logf})
		if err != nil {
			return errors.Join(err, storage.CloseStore(p))
		}
		err = storage.CatchUp(ctx, j, p, opts, logf)
		if errors.Is(err, storage.ErrStoreStuck) {
			return err // closing the store would wait behind its stuck apply
		}
		return errors.Join(err, j.Close(), storage.CloseStore(p))
	}
	logf("following %s", storage.JournalDir(*dataDir))
	j, err := storage.OpenDirJournal(*dataDir, *poll)
	for err != nil && *follow && ctx.Err() == nil {
		// No journal yet: wait for the server to create it.
		time.Sleep(*poll)
		j, err = storage.OpenDirJournal(*dataDir, *poll)
	}
	if err != nil {
		return errors.Join(err, storage.CloseStore(p))
	}
	defer j.Close()
	target := j.DurableSeq()
	s := storage.NewStorer(j, p, opts)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(runCtx) }()
	// The server beside it measures --backlog-limit from what this
	// publishes (storage.PublishProgress); the last word comes after Run.
	pubCtx, stopPub := context.WithCancel(context.Background())
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); storage.PublishProgress(pubCtx, *dataDir, s, *poll, logf) }()
	defer func() { stopPub(); <-pubDone }()
	if *once {
		go func() {
			if s.WaitApplied(runCtx, target) == nil {
				logf("caught up with %d", target)
				cancel()
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopping := ctx.Done()
	for {
		select {
		case err := <-errc:
			l := s.Lag()
			logf("stopped at applied %d (durable %d), journal at %d", l.AppliedSeq, l.DurableAppliedSeq, l.JournalSeq)
			return errors.Join(err, storage.CloseStore(p))
		case <-stopping:
			// Run may be stuck in an Apply that a full disk stalls: the
			// wait for it is bounded, and a stuck store is left open.
			err := storage.WaitStorerStopped(errc)
			if errors.Is(err, storage.ErrStoreStuck) {
				return err
			}
			l := s.Lag()
			logf("stopped at applied %d (durable %d), journal at %d", l.AppliedSeq, l.DurableAppliedSeq, l.JournalSeq)
			return errors.Join(err, storage.CloseStore(p))
		case <-tick.C:
			l := s.Lag()
			logf("applied %d, durable %d, journal %d: backlog %d records (~%d bytes, oldest %v), journal on disk %d bytes",
				l.AppliedSeq, l.DurableAppliedSeq, l.JournalSeq, l.BacklogRecords, l.BacklogBytes,
				l.OldestUnapplied.Round(time.Millisecond), l.JournalBytes)
		}
	}
}

// snapshotMain runs `petrel snapshot create|verify|restore`.
func snapshotMain(args []string) error {
	usage := func() {
		fmt.Fprint(os.Stderr, `usage:
  petrel snapshot create --data-dir DIR --out SNAPDIR
  petrel snapshot verify SNAPDIR
  petrel snapshot restore SNAPDIR --data-dir DIR [--force]
`)
	}
	if len(args) == 0 {
		usage()
		return errors.New("no snapshot command")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("petrel snapshot "+cmd, flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	out := fs.String("out", "", "create: the snapshot directory to write (must not exist or be empty)")
	force := fs.Bool("force", false, "restore: replace a non-empty data directory")
	quiet := fs.Bool("q", false, "no progress output")
	// Flags may come before or after the one positional argument.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	logf := progressLogf(*quiet)
	ctx, stop := stopContext(logf)
	defer stop()
	switch cmd {
	case "create":
		if *dataDir == "" || *out == "" || len(pos) > 0 {
			usage()
			return errors.New("create needs --data-dir and --out")
		}
		_, err := storage.CreateSnapshot(ctx, *dataDir, *out, logf)
		return err
	case "verify":
		if len(pos) != 1 {
			usage()
			return errors.New("verify needs SNAPDIR")
		}
		m, err := storage.VerifySnapshot(ctx, pos[0], logf)
		if err != nil {
			return err
		}
		fmt.Printf("snapshot %s OK: applied sequence %d, %d items, journal %d..%d, %d files, created %s\n",
			pos[0], m.AppliedSeq, m.Items, m.JournalFirst, m.JournalLast, len(m.Files), m.Created.Format(time.RFC3339))
		return nil
	case "restore":
		if len(pos) != 1 || *dataDir == "" {
			usage()
			return errors.New("restore needs SNAPDIR and --data-dir")
		}
		return storage.RestoreSnapshot(ctx, pos[0], *dataDir, *force, logf)
	}
	usage()
	return fmt.Errorf("unknown snapshot command %q", cmd)
}

// stopContext returns a context that the first SIGINT or SIGTERM cancels.
// Stopping cleanly can take a while (a store that flushes, a restore that
// removes its copy, or up to storage.StoreStopTimeout twice for a store
// stuck on a full disk), so a second signal exits at once: the journal
// keeps every write the store lacks, and an interrupted restore leaves its
// marker (storage.CheckRestore). stop undoes the signal handling.
func stopContext(logf storage.Logf) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			logf("%v: stopping (send it again to exit at once)", sig)
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "petrel: %v again: exiting at once\n", sig)
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			exitNow(code)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
}

// exitNow is os.Exit; tests replace it.
var exitNow = os.Exit

// progressLogf writes timestamped progress lines to stderr.
func progressLogf(quiet bool) storage.Logf {
	if quiet {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
}
