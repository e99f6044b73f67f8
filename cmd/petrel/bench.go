package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"petrel/internal/bench"
)

// benchMain runs `petrel bench`: flags or a TOML workload in, a summary and
// optionally a JSON result out. Verify-mode mismatches make it exit non-zero.
func benchMain(args []string) error {
	cfg, err := bench.ParseArgs("petrel bench", args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var progress io.Writer = os.Stderr
	if cfg.Quiet {
		progress = nil
	}
	res, err := bench.Run(ctx, cfg, progress)
	if res != nil {
		res.Print(os.Stdout)
		if cfg.JSON != "" {
			if werr := res.WriteJSON(cfg.JSON); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		if res.Mismatches > 0 {
			err = errors.Join(err, fmt.Errorf("verify: %d values differ from what was written", res.Mismatches))
		}
	}
	return err
}
