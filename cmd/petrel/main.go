// Command petrel is a memcached-compatible cache server that keeps its data.
//
// Subcommands hand over to their packages; this file only dispatches.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveMain(args)
	case "bench":
		err = benchMain(args)
	case "storer":
		err = storerMain(args)
	case "snapshot":
		err = snapshotMain(args)
	case "analyze":
		err = analyzeMain(args)
	case "version":
		fmt.Println(version)
	case "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "petrel: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "petrel %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: petrel [command] [flags]

commands:
  serve     serve the memcached protocols (the default; see petrel serve -h)
  bench     load generator for memcached servers (see petrel bench -h)
  storer    apply a data directory's journal to its storage, as a separate process
  snapshot  create, verify or restore a verified snapshot of a data directory
  analyze   turn command logs into workload reports and miss-ratio curves
  version   print the version
`)
}
