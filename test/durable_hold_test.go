package test

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestDurableHoldsReads checks MemoryDB's rule that no client reads a value
// that is not yet durable. With --journal-max-delay large, a write stays
// undurable for a long while; a reader on another connection polls the key
// meanwhile. Whenever the reader is shown the new value (or, for a delete,
// the key's absence), the journal must already be durable up to that write:
// the reader's reply was held until the writer's could be sent. The check
// reads journal_durable_seq after the reply, so a server that leaks the
// value would be caught unless the disk caught up in between; a correct one
// can never fail it.
func TestDurableHoldsReads(t *testing.T) {
	s := startDurable(t, t.TempDir(), "--journal-max-delay", "200ms")
	w, r, st := mustDialMC(t, s), mustDialMC(t, s), mustDialMC(t, s)
	type done struct {
		reply string
		err   error
		at    time.Time
	}
	write := func(req string) chan done {
		ch := make(chan done, 1)
		go func() {
			l, err := w.line(req)
			ch <- done{l, err, time.Now()}
		}()
		return ch
	}
	readerFirst := 0
	for i := 0; i < 4; i++ {
		key := "hold" + strconv.Itoa(i)
		v := fmt.Sprintf("v%d", i)
		wr := write(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(v), v))
		var seen time.Time
		for {
			got, err := r.gets(key)
			if err != nil {
				t.Fatalf("reader: %v", err)
			}
			if g, ok := got[key]; ok {
				seen = time.Now()
				if g.data != v {
					t.Fatalf("reader got %q, want %q", g.data, v)
				}
				if durable := statUint(t, st, "journal_durable_seq"); durable < g.cas {
					t.Errorf("%s: the reader was shown sequence %d while only %d was durable", key, g.cas, durable)
				}
				break
			}
		}
		res := <-wr
		if res.err != nil || res.reply != "STORED" {
			t.Fatalf("set %s: %q, %v", key, res.reply, res.err)
		}
		if seen.Before(res.at) {
			readerFirst++
		}

		// A miss is held too: it may come from a delete not yet durable.
		last := statUint(t, st, "journal_last_seq")
		wr = write("delete " + key + "\r\n")
		for {
			got, err := r.gets(key)
			if err != nil {
				t.Fatalf("reader: %v", err)
			}
			if _, ok := got[key]; !ok {
				break
			}
		}
		if durable := statUint(t, st, "journal_durable_seq"); durable < last+1 {
			t.Errorf("%s: the reader saw the delete (sequence %d) while only %d was durable", key, last+1, durable)
		}
		if res := <-wr; res.err != nil || res.reply != "DELETED" {
			t.Fatalf("delete %s: %q, %v", key, res.reply, res.err)
		}
	}
	// Both replies are released by the same fsync, so either may arrive
	// first by a hair; this is a measurement, not a check.
	t.Logf("the reader's reply arrived before the writer's %d of 4 times (same group commit)", readerFirst)
}
