package server

// STUB: replaced by the classic text protocol executor.

// execText runs one classic text or meta request (meta lines are handed to
// execMeta).
func (s *session) execText(buf []byte) step { return step{} }
