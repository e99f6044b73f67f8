package test

import (
	"testing"
	"time"
)

// TestDurableDelayedFlush: a delayed flush_all takes, as in memcached,
// everything stored up to its deadline, including what is written between
// the command and the deadline; a restart past the deadline (graceful, or
// a crash right after the acknowledgements) must agree with what memory
// showed before it. (Before, the write made while the flush was pending
// came back after the restart.)
func TestDurableDelayedFlush(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "sigterm"
		if crash {
			name = "sigkill"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := listenOpts{args: []string{"--data-dir", t.TempDir()}}
			s := startFeature(t, "petrel", o, "durability (--data-dir)")
			c := s.dial(t)
			// One batch, so one clock reading: flush_all 2 is due at the end
			// of the next second, and the set after it is before that.
			roundTrip(t, c, "set before 0 0 1\r\nb\r\nflush_all 2\r\nset during 0 0 1\r\nd\r\nmn\r\n", "MN\r\n")
			time.Sleep(3 * time.Second) // past the deadline (not a timing assertion)
			roundTrip(t, c, "set after 0 0 1\r\na\r\nmn\r\n", "MN\r\n")
			const get, want = "get before during after\r\n", "VALUE after 0 1\r\na\r\nEND\r\n"
			if got := roundTrip(t, c, get, "END\r\n"); got != want {
				t.Fatalf("past the deadline: %q, want %q", got, want)
			}
			if crash {
				s.kill()
			} else if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			s2 := startPetrel(t, o)
			if got := roundTrip(t, s2.dial(t), get, "END\r\n"); got != want {
				t.Errorf("after a restart (%s): %q, want %q as before it", name, got, want)
			}
		})
	}
}
