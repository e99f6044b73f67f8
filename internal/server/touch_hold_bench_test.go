package server

import "testing"

// BenchmarkDurableGetHit is one get hit of a durable item with a journal:
// what the reply's durability checks (the item's CAS, the touch slots, the
// pending delayed flush) add to executing it. With "touch in flight",
// another key's touch is not durable yet, so the hit also hashes its key
// to look at its slot.
func BenchmarkDurableGetHit(b *testing.B) {
	for _, inFlight := range []bool{false, true} {
		name := "idle"
		if inFlight {
			name = "touch in flight"
		}
		b.Run(name, func(b *testing.B) {
			gate := newGateFS()
			testJournalFS = gate
			defer func() { testJournalFS = nil }()
			cfg := DefaultConfig()
			cfg.MemoryMB = 16
			cfg.Durable.DataDir = b.TempDir()
			srv, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(srv.Shutdown)
			b.Cleanup(gate.release)
			s := newTextSession(srv, textTestNow)
			s.execText([]byte("set bench:key:0001 0 0 100\r\n" + string(make([]byte, 100)) + "\r\nset other 0 0 1\r\no\r\n"))
			if err := s.awaitDurable(); err != nil {
				b.Fatal(err)
			}
			if inFlight {
				gate.shut()
				s.execText([]byte("touch other 100\r\n"))
				s.holdSeq = 0
			}
			req := []byte("get bench:key:0001\r\n")
			b.ReportAllocs()
			for b.Loop() {
				s.out = s.out[:0]
				s.exec(req)
			}
		})
	}
}
