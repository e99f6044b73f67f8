package test

import (
	"fmt"
	"strings"
	"testing"
)

// TestDurableRestart checks Petrel's promise beyond memcached: with a data
// directory, every acknowledged write survives a restart, both a graceful
// one (SIGTERM) and a crash (SIGKILL right after the acknowledgements).
func TestDurableRestart(t *testing.T) {
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
			var req strings.Builder
			var want strings.Builder
			for i := 0; i < 200; i++ {
				fmt.Fprintf(&req, "set k%d %d 0 %d\r\nvalue-%d\r\n", i, i, len(fmt.Sprint(i))+6, i)
			}
			req.WriteString("delete k0\r\nincr n 1\r\nset n 0 0 2\r\n41\r\nincr n 1\r\nappend k1 0 0 3\r\n+++\r\n")
			req.WriteString("set gone 0 -1 1\r\nx\r\nmn\r\n")
			roundTrip(t, c, req.String(), "MN\r\n")
			if crash {
				s.kill()
			} else if err := s.Stop(); err != nil {
				t.Fatal(err)
			}

			s2 := startPetrel(t, o)
			c2 := s2.dial(t)
			var get strings.Builder
			get.WriteString("get k0 gone n k1")
			want.WriteString("VALUE n 0 2\r\n42\r\nVALUE k1 1 10\r\nvalue-1+++\r\n")
			for i := 2; i < 200; i++ {
				fmt.Fprintf(&get, " k%d", i)
				fmt.Fprintf(&want, "VALUE k%d %d %d\r\nvalue-%d\r\n", i, i, len(fmt.Sprint(i))+6, i)
			}
			get.WriteString("\r\n")
			want.WriteString("END\r\n")
			if got := roundTrip(t, c2, get.String(), "END\r\n"); got != want.String() {
				t.Errorf("after a restart (%s) the cache holds\n%.300q\nwant\n%.300q", name, got, want.String())
			}
		})
	}
}
