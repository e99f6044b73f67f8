package main

// `petrel serve`: read the settings (serve_config.go), then hand over to
// internal/server. The process chores memcached does around its server live
// here too: daemonizing, the pid file, dropping root, signals.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"petrel/internal/server"
)

const version = server.Version

// daemonChildEnv marks the re-executed daemon so it does not fork again.
const daemonChildEnv = "PETREL_DAEMON_CHILD"

func serveMain(args []string) error {
	cfg, cl, err := loadConfig(args, os.LookupEnv, os.Stderr)
	if cl.help {
		printUsage(os.Stdout)
		return nil
	}
	if cl.version {
		fmt.Println(version)
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Daemonize && os.Getenv(daemonChildEnv) == "" {
		return daemonize()
	}
	if os.Geteuid() == 0 && cfg.User == "" {
		// memcached refuses to run as root without -u; containers routinely
		// run as root, so Petrel warns instead (docs/configuration.md).
		fmt.Fprintln(os.Stderr, "petrel: warning: running as root; use -u USER to drop privileges")
	}
	for _, note := range server.ApplyRuntime(cfg) {
		if cfg.Verbose > 0 {
			fmt.Fprintln(os.Stderr, "petrel:", note)
		}
	}
	dataDir := cfg.Durable.DataDir
	_, statErr := os.Stat(dataDir)
	created := dataDir != "" && errors.Is(statErr, os.ErrNotExist)
	// Signals are caught from here on, so that one during the warm-up
	// (which New does) stops it cleanly, as one while serving does.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first signal starts a graceful stop; a second one takes
		// the default action and ends the process at once, which the
		// journal makes as safe as a crash (for a stop held up by a
		// disk or a database that does not answer).
		<-ctx.Done()
		stop()
	}()
	srv, err := server.NewContext(ctx, cfg)
	if err != nil {
		if errors.Is(err, server.ErrStopped) && ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "petrel: stopped by a signal during the warm-up; nothing is lost, the next start loads again")
			return nil
		}
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	if cfg.PidFile != "" {
		if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			srv.Shutdown()
			return fmt.Errorf("pid file: %w", err)
		}
		defer os.Remove(cfg.PidFile)
	}
	// Bound first, so a privileged port works, then give root up. A data
	// directory this start created is handed to the user with the pid
	// file and the socket; one that existed must already be the user's.
	owned := []string{cfg.PidFile, cfg.UnixSocket}
	if created && cfg.User != "" && os.Geteuid() == 0 {
		owned = append(owned, treeOf(dataDir)...)
	}
	if err := dropPrivileges(cfg.User, owned...); err != nil {
		srv.Shutdown()
		return err
	}
	if err := checkWritable(dataDir, cfg.User); err != nil {
		srv.Shutdown()
		return err
	}
	if cfg.Verbose > 0 {
		for _, a := range srv.Addrs() {
			fmt.Fprintf(os.Stderr, "petrel: listening on %s %s\n", a.Network(), a)
		}
		for _, a := range srv.UDPAddrs() {
			fmt.Fprintf(os.Stderr, "petrel: listening on udp %s\n", a)
		}
		if a := srv.AdminAddr(); a != nil {
			fmt.Fprintf(os.Stderr, "petrel: admin http://%s/metrics\n", a)
		}
	}
	return srv.Serve(ctx)
}

// treeOf lists dir and everything under it.
func treeOf(dir string) []string {
	var paths []string
	_ = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	return paths
}

// checkWritable refuses a data directory the server, now running as user,
// could not write to: files opened before the switch stay writable, so it
// would otherwise fail only at the journal's next segment or the store's
// next flush.
func checkWritable(dataDir, user string) error {
	if dataDir == "" || user == "" {
		return nil
	}
	for _, dir := range []string{dataDir, filepath.Join(dataDir, "journal"), filepath.Join(dataDir, "pebble")} {
		if _, err := os.Stat(dir); err != nil {
			continue // a database backend has no pebble directory
		}
		f, err := os.CreateTemp(dir, ".petrel-write-probe-*")
		if err != nil {
			return fmt.Errorf("the data directory %s is not writable by %s (%w): chown -R %s %s, or run without -u", dataDir, user, err, user, dataDir)
		}
		f.Close()
		os.Remove(f.Name())
	}
	return nil
}

// daemonize re-executes this program detached from the terminal (a new
// session via setsid, standard streams on /dev/null) and exits the parent.
// Go cannot fork a running runtime, so this replaces memcached's daemon().
func daemonize() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	defer null.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonChildEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	return cmd.Process.Release()
}

// dropPrivileges switches to name when running as root (memcached -u),
// first handing it the files it must remove on exit. Not root, -u is
// ignored, as memcached ignores it.
func dropPrivileges(name string, owned ...string) error {
	if name == "" || os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("can't find the user %s to switch to: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	for _, f := range owned {
		if f != "" {
			if err := os.Lchown(f, uid, gid); err != nil {
				return fmt.Errorf("chown %s to %s: %w", f, name, err)
			}
		}
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("setgroups for %s: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
}
