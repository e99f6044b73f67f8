package main

// STUB: replaced by the analyze command.

import "errors"

func analyzeMain(args []string) error { return errors.New("not implemented yet") }
