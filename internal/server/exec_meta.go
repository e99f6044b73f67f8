package server

// STUB: replaced by the meta protocol executor.

// execMeta runs one meta request (mg, ms, md, ma, mn, me). buf starts at the
// command; it has the same contract as execText.
func (s *session) execMeta(buf []byte) step { return step{} }
