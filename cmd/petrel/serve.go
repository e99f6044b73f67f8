package main

// STUB: replaced by the serve command (flags, env, TOML config).

import "petrel/internal/server"

const version = server.Version

func serveMain(args []string) error { return nil }
