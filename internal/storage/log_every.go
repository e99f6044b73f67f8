package storage

import (
	"fmt"
	"sync"
	"time"
)

// logEvery rate-limits error lines that repeat while a backend is down or
// a disk full (the storer's retries, Pebble's background errors): every
// few seconds, or every retry, would fill the log with the same line; the
// counters keep the exact count.
type logEvery struct {
	mu     sync.Mutex
	last   time.Time
	hidden int
}

const errorLogEvery = 30 * time.Second

// allow reports whether a line may be logged now, and how many were held
// back since the last one.
func (l *logEvery) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < errorLogEvery {
		l.hidden++
		return false, 0
	}
	n := l.hidden
	l.last, l.hidden = now, 0
	return true, n
}

func suppressed(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d more such errors in the last %v", n, errorLogEvery)
}
