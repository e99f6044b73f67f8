package main

// STUB: replaced by the bench command.

func benchMain(args []string) error { return nil }
