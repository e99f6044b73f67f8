package server

// Back-pressure for write-behind (--backlog-limit). The journal absorbs
// whatever the backend cannot take yet, on disk, never in memory; the limit
// bounds that disk. Past it every mutation gets SERVER_ERROR (reads go on)
// until the storer has brought the backlog back under 90% of the limit:
// the hysteresis keeps a backend that hovers at the limit from flapping
// writes on and off. The 2013 prototype's write-behind dropped sets once
// DynamoDB throttled; here the client is told, and nothing acknowledged is
// ever dropped.
//
// With the storer in another process (`petrel storer`) the server has no
// storer to ask, and the limit went unenforced: watchExternalBacklog
// measures from the progress that process publishes instead.

import (
	"context"
	"errors"
	"time"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// errBacklog is what s.do returns (wrapped in errJournal) for a mutation
// refused by the backlog limit.
var errBacklog = errors.New("backlog limit reached")

// backlogPoll is how often the backlog is measured against the limit.
const backlogPoll = 50 * time.Millisecond

// watchBacklog sets and clears d.backlogFull from the backlog of the
// server's own storer st until ctx is done.
func (srv *Server) watchBacklog(ctx context.Context, d *durable, st *storage.Storer, limit int64) {
	srv.limitBacklog(ctx, d, limit, func() int64 { return backlogBytes(st.Lag()) })
}

// watchExternalBacklog is watchBacklog for a storer in another process
// (`petrel storer`), measured from the progress it publishes.
func (srv *Server) watchExternalBacklog(ctx context.Context, d *durable, limit int64) {
	srv.limitBacklog(ctx, d, limit, func() int64 { return externalBacklogBytes(d.j, d.cfg.DataDir) })
}

// limitBacklog sets and clears d.backlogFull from measure (bytes, or -1
// for unknown) until ctx is done.
func (srv *Server) limitBacklog(ctx context.Context, d *durable, limit int64, measure func() int64) {
	t := time.NewTicker(backlogPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.backlogFull.Store(false)
			return
		case <-t.C:
		}
		n := measure()
		switch full := d.backlogFull.Load(); {
		case n < 0:
			// Unknown until the storer has found its place in the journal
			// (one backend call after start): keep the last decision.
		case !full && n > limit:
			d.backlogFull.Store(true)
			srv.logger.Printf("storage: backlog of %d bytes is over --backlog-limit %d: refusing writes until the backend catches up", n, limit)
		case full && n <= limit-limit/10: // at most 90%; limit/10*9 was 0 below 10 bytes
			d.backlogFull.Store(false)
			srv.logger.Printf("storage: backlog down to %d bytes: accepting writes again", n)
		}
	}
}

// backlogBytes is the journal the backend has not applied yet, measured
// between the storer's position and the journal's durable end, or -1 when
// the storer cannot tell. Neither a per-record estimate nor the journal's
// size on disk will do: the first missed large values written after small
// ones, the second refused writes after a restart over a journal that was
// all applied but not yet truncated.
func backlogBytes(l storage.Lag) int64 {
	if l.BacklogRecords == 0 {
		return 0
	}
	return l.BacklogBytes
}

// externalBacklogBytes is the journal a storer in another process has not
// applied: from the place it publishes (storage.PublishProgress, every
// --poll) to the journal's durable end, one small file read and no scan.
// Before it has published anything, or if the file cannot be read, it is
// the whole journal kept, which is truncated below what that storer holds
// durably (storer.applied): more than the backlog by what it applied but
// has not flushed yet, never less. A storer that stopped leaves its last
// progress, so the backlog grows with each write and the limit holds.
func externalBacklogBytes(j *journal.Local, dataDir string) int64 {
	p, ok, err := storage.ReadStorerProgress(dataDir)
	switch {
	case err != nil || !ok:
		return j.BytesAfter(journal.Position{})
	case p.Applied >= j.DurableSeq():
		return 0
	}
	return j.BytesAfter(p.Pos)
}
