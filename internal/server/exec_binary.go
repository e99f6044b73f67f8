package server

// STUB: replaced by the binary protocol executor.

// execBinary runs one binary-protocol request; buf[0] is 0x80.
func (s *session) execBinary(buf []byte) step { return step{} }
