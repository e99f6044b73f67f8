package storage

// The backlog in bytes (Lag.BacklogBytes) is what --backlog-limit bounds:
// the journal a backend that is behind leaves on disk. It is measured
// from journal positions, not estimated: the storer keeps where the record
// after its last applied one starts, and the journal counts the record
// bytes from there to its durable end (journal.BytesAfterer), under its
// own lock and without I/O, since Lag is polled every 50 ms. An estimate
// from the average applied record cannot see a backlog of larger records
// than those applied before the backend went down, and the journal's size
// on disk counts what was applied but not yet truncated.
//
// Until Run has read the backend's applied sequence and positioned its
// reader, and for a journal or reader that cannot measure, the bytes are
// unknown (-1), not guessed: a guess either refuses writes that fit or
// accepts writes that do not.

import "petrel/internal/journal"

// readerPosition is where rd's next record starts. A reader that has not
// read yet may scan its segment to find out, as its first Next would.
func readerPosition(rd journal.Reader) (journal.Position, bool) {
	p, ok := rd.(journal.Positioner)
	if !ok {
		return journal.Position{}, false
	}
	pos, err := p.Position()
	return pos, err == nil // a reader that cannot tell fails its next Next too
}

// position publishes rd's position as the storer's, before any batch.
func (s *Storer) position(rd journal.Reader) {
	pos, ok := readerPosition(rd)
	s.mu.Lock()
	s.pos, s.posKnown = pos, ok
	s.mu.Unlock()
}

// backlogBytes is the journal after pos, or -1 when that is unknown.
func (s *Storer) backlogBytes(records uint64, pos journal.Position, known bool) int64 {
	if records == 0 {
		return 0
	}
	j, ok := s.j.(journal.BytesAfterer)
	if !ok || !known {
		return -1
	}
	return j.BytesAfter(pos)
}

// Progress is the applied sequence and where the record after it starts,
// for a server to measure the backlog of a storer in another process
// (follow_progress.go); false until Run has positioned its reader.
func (s *Storer) Progress() (StorerProgress, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StorerProgress{Applied: s.applied, Pos: s.pos}, s.posKnown
}
