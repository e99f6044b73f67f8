package main

// STUB: replaced by the storer and snapshot commands.

import "errors"

func storerMain(args []string) error   { return errors.New("not implemented yet") }
func snapshotMain(args []string) error { return errors.New("not implemented yet") }
