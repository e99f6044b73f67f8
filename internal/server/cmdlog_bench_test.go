package server

import (
	"path/filepath"
	"testing"

	"petrel/internal/cmdlog"
)

// BenchmarkCmdlogGet measures what logging adds to one get hit on the
// request path: executing it, then (when on) sampling, re-parsing,
// classifying and copying the record into the ring. The drainer runs
// alongside, as in the server.
func BenchmarkCmdlogGet(b *testing.B) {
	for _, bc := range []struct {
		name   string
		sample int // 0: logger off
	}{{"off", 0}, {"sample100", 100}, {"sample1", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := newTextServer(b, nil)
			s := newTextSession(srv, textTestNow)
			s.execText([]byte("set bench:key:0001 0 0 100\r\n" + string(make([]byte, 100)) + "\r\n"))
			var l *cmdlog.Logger
			if bc.sample > 0 {
				var err error
				l, err = cmdlog.Open(cmdlog.Options{Dest: filepath.Join(b.TempDir(), "log"), Sample: bc.sample})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
			}
			req := []byte("get bench:key:0001\r\n")
			b.ReportAllocs()
			for b.Loop() {
				s.out = s.out[:0]
				st := s.exec(req)
				if l != nil {
					s.logRequest(l, "tcp:127.0.0.1:5000", req, st, 0)
				}
			}
			b.StopTimer()
			if l != nil {
				s.cmdlogRelease()
				_ = l.Close()
				if st := l.Stats(); st.Lines == 0 {
					b.Fatal("nothing logged")
				}
			}
		})
	}
}
