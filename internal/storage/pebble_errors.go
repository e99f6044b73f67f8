package storage

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Pebble retries a failed flush at once and forever: flush reports the
// error and schedules the same flush again, with no delay and no count
// (the "TODO(peter): count consecutive flush errors and backoff" in
// DB.flush; cockroachdb/pebble#6139, open). On a full disk, or with the
// directory gone, that is a core spent on retries and thousands of log
// lines a second, and DB.Flush, which waits for the flush to finish, never
// returns: the storer hung in it, and so did a shutdown.
//
// bgErrors is the defence. Its BackgroundError handler sleeps before it
// returns, longer after each consecutive error (1 ms doubling to
// bgErrorMaxPause), which turns Pebble's retry loop into a backoff; a
// successful flush or compaction resets it. The pause runs on Pebble's
// background goroutine, for a flush with DB.mu held: commits and metrics
// wait for it, reads do not, and nothing waits longer than one pause. The
// log gets the first error and then a count every errorLogEvery (logEvery,
// as the storer's retries). And every error wakes waitFlush, so that
// Pebble.Flush returns the error instead of waiting for a flush that may
// never succeed.
type bgErrors struct {
	logf func(string, ...any)

	mu          sync.Mutex
	consecutive int
	last        error
	notify      chan struct{} // closed, and replaced, on each error
	log         logEvery
}

const bgErrorMaxPause = 500 * time.Millisecond

func newBGErrors(logf func(string, ...any)) *bgErrors {
	return &bgErrors{logf: logf, notify: make(chan struct{})}
}

// listener is the Pebble event listener that feeds e.
func (e *bgErrors) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: e.report,
		FlushEnd: func(info pebble.FlushInfo) {
			if info.Err == nil {
				e.reset()
			}
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			if info.Err == nil {
				e.reset()
			}
		},
	}
}

func (e *bgErrors) report(err error) {
	e.mu.Lock()
	e.consecutive++
	e.last = err
	close(e.notify)
	e.notify = make(chan struct{})
	pause := min(time.Millisecond<<min(e.consecutive-1, 20), bgErrorMaxPause)
	e.mu.Unlock()
	if ok, n := e.log.allow(time.Now()); ok && e.logf != nil {
		e.logf("pebble: background error (retrying with backoff): %v%s", err, suppressed(n))
	}
	time.Sleep(pause)
}

func (e *bgErrors) reset() {
	e.mu.Lock()
	e.consecutive = 0
	e.mu.Unlock()
}

// waitFlush waits for done (a flush's channel from DB.AsyncFlush) and
// returns nil, or returns the first background error reported meanwhile.
// Such an error may come from a compaction rather than the flush; the
// caller then tries again later, and finds the flush done if it was.
func (e *bgErrors) waitFlush(done <-chan struct{}) error {
	e.mu.Lock()
	n := e.notify
	e.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-n:
	}
	select {
	case <-done: // the error was not this flush's
		return nil
	default:
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}
