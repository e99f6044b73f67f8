package server

// Tests of the meta executor. The scripts under testdata/meta/ use the text
// protocol's script format and runner (exec_text_test.go): `> ` lines are
// sent, `< ` lines expected, `@now +N` advances the clock. Every script that
// does not move the clock is replayed against a real memcached 1.6.18 by
// TestMetaScriptsMemcached, so the expectations are memcached's own bytes.

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"petrel/internal/stats"
)

func loadMetaScripts(t *testing.T) []*textScript {
	t.Helper()
	files, err := filepath.Glob("testdata/meta/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no meta scripts: %v", err)
	}
	var out []*textScript
	for _, f := range files {
		sc, err := loadTextScript(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sc)
	}
	return out
}

func TestMetaScripts(t *testing.T) {
	for _, sc := range loadMetaScripts(t) {
		t.Run(sc.name, func(t *testing.T) { runTextScript(t, sc, false) })
		t.Run(sc.name+"/bytewise", func(t *testing.T) { runTextScript(t, sc, true) })
	}
}

func TestMetaScriptsMemcached(t *testing.T) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not installed")
	}
	if testing.Short() {
		t.Skip("starts memcached")
	}
	for _, sc := range loadMetaScripts(t) {
		if sc.petrelOnly {
			continue
		}
		t.Run(sc.name, func(t *testing.T) { replayTextMemcached(t, bin, sc) })
	}
}

// metaRun feeds one complete request to execMeta and returns its reply.
func metaRun(t *testing.T, s *session, req string) string {
	t.Helper()
	s.out = s.out[:0]
	st := s.execMeta([]byte(req))
	if st.n != len(req) {
		t.Fatalf("%q: consumed %d of %d bytes (step %+v)", req, st.n, len(req), st)
	}
	return string(s.out)
}

// TestMetaStats checks which memcached counters each meta command moves;
// the expectations were read from memcached 1.6.18's `stats` around each
// request.
func TestMetaStats(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	type want map[stats.Counter]uint64
	f := func(req string, w want) {
		t.Helper()
		var before [stats.NumCounters]uint64
		for c := range before {
			before[c] = s.stats.Load(stats.Counter(c))
		}
		metaRun(t, s, req)
		for c := stats.Counter(0); c < stats.NumCounters; c++ {
			if c == stats.BytesRead || c == stats.BytesWritten {
				continue
			}
			if got := s.stats.Load(c) - before[c]; got != w[c] {
				t.Errorf("%q: %s moved by %d, want %d", req, c.Name(), got, w[c])
			}
		}
	}
	f("mn\r\n", want{})
	f("me nokey\r\n", want{stats.CmdMeta: 1})
	f("mg k1 v\r\n", want{stats.CmdGet: 1, stats.GetMisses: 1})
	f("mg k1 v T10\r\n", want{stats.CmdGet: 1, stats.GetMisses: 1})
	f("ms k1 2\r\nab\r\n", want{stats.CmdSet: 1})
	f("me k1\r\n", want{stats.CmdMeta: 1})
	f("mg k1 v\r\n", want{stats.CmdGet: 1, stats.GetHits: 1})
	f("mg k1 v T10\r\n", want{stats.CmdTouch: 1, stats.TouchHits: 1})
	f("mg k1 s u\r\n", want{stats.CmdGet: 1, stats.GetHits: 1})
	f("mg k2 N30 v\r\n", want{stats.CmdGet: 1, stats.GetHits: 1})
	f("md k2\r\n", want{stats.DeleteHits: 1})
	f("md k2\r\n", want{stats.DeleteMisses: 1})
	f("ms k1 2 C999\r\nab\r\n", want{stats.CmdSet: 1, stats.CasBadval: 1})
	f("ms k1 2 C999 MA\r\nab\r\n", want{stats.CmdSet: 1})
	f("ms k9 2 C999\r\nab\r\n", want{stats.CmdSet: 1, stats.CasMisses: 1})
	f("ms k1 2 C8 c\r\nabcd", want{stats.CmdSet: 1, stats.ProtocolErrors: 1})
	f("md k1 I\r\n", want{})
	f("md k1 C1\r\n", want{stats.DeleteMisses: 1})
	f("ma n1\r\n", want{stats.IncrMisses: 1})
	f("ma n1 MD\r\n", want{stats.DecrMisses: 1})
	f("ma n1 N0\r\n", want{})
	f("ma n1\r\n", want{stats.IncrHits: 1})
	f("ma n1 MD\r\n", want{stats.DecrHits: 1})
	f("ma n1 C1\r\n", want{})
	f("mg k1 Z\r\n", want{stats.ProtocolErrors: 1})
}

// TestMetaIncomplete checks the framing contract: nothing is consumed until
// the line and, for ms, the data block are complete.
func TestMetaIncomplete(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	f := func(in string, want step) {
		t.Helper()
		s.out = s.out[:0]
		if got := s.execMeta([]byte(in)); got != want {
			t.Errorf("%q: step %+v, want %+v (out %q)", in, got, want, s.out)
		}
	}
	f("mg foo v", step{})
	f("ms foo 5\r\nab", step{need: 17})
	f("ms foo 5 T0\r\n", step{need: 20})
	f("ms foo 5\r\nhello\r\n", step{n: 17})
	f("ms foo 5 Z\r\n", step{n: 12, swallow: 7})
	f("ms foo 2000000\r\n", step{n: 16, swallow: 2000002})
	f("mg "+string(make([]byte, maxLineNoNewline+1)), step{n: maxLineNoNewline + 4, close: true})
}

// TestMetaAllocs checks that a warm session runs mg and ms without
// allocating.
func TestMetaAllocs(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	set := []byte("ms key 5\r\nhello\r\n")
	get := []byte("mg key v\r\n")
	for range 10 {
		s.out = s.out[:0]
		s.execMeta(set)
		s.execMeta(get)
	}
	f := func(name string, req []byte) {
		t.Helper()
		n := testing.AllocsPerRun(200, func() {
			s.out = s.out[:0]
			if st := s.execMeta(req); st.n != len(req) {
				t.Fatalf("%s: step %+v", name, st)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
	f("ms key 5", set)
	f("mg key v", get)
	if got := string(s.out); got != "VA 5\r\nhello\r\n" {
		t.Errorf("mg reply %q", got)
	}
}

// FuzzExecMeta runs arbitrary input through execMeta the way the connection
// layer does and checks the step contract: no panic, progress within the
// input, whole reply lines, and a reply to every request that is not quiet.
func FuzzExecMeta(f *testing.F) {
	for _, seed := range []string{
		"mg foo v k c t s f h l O1\r\n", "ms foo 3 T10 F5 c k\r\nabc\r\n",
		"ma n N0 J5 v t T10\r\n", "md foo I T30 q\r\n", "mg foo N30 R10 v\r\n",
		"ms YTE= 2 b k c MA\r\nxx\r\n", "me foo\r\n", "mn\r\n", "ms foo 3\r\nabcd\r\n",
		"ms foo 1048576\r\n", "mg foo Z v v\r\n", "ms foo 2 I C1 c\r\nab\r\n",
	} {
		f.Add([]byte(seed))
	}
	srv := newTextServer(f, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		s := newTextSession(srv, textTestNow)
		for len(in) > 0 {
			before := len(s.out)
			st := s.execMeta(in)
			if len(s.out) > 0 && !bytes.HasSuffix(s.out, []byte("\r\n")) {
				t.Fatalf("reply %q does not end a line", s.out)
			}
			if st.n > 0 && !st.close && len(s.out) == before && !bytes.Contains(in[:st.n], []byte("q")) {
				t.Fatalf("no reply to %q", in[:st.n])
			}
			if st.n == 0 {
				if st.need != 0 && st.need <= len(in) {
					t.Fatalf("need %d with %d bytes buffered", st.need, len(in))
				}
				return
			}
			if st.n > len(in) || st.swallow < 0 {
				t.Fatalf("step %+v for %d bytes", st, len(in))
			}
			in = in[st.n:]
			in = in[min(st.swallow, len(in)):]
			if st.close {
				return
			}
		}
	})
}

// TestMetaCASFlows covers what scripts cannot: requests that quote the CAS
// the server just handed out.
func TestMetaCASFlows(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	casOf := func(key string) uint64 {
		t.Helper()
		got := metaRun(t, s, "mg "+key+" c\r\n")
		fields := strings.Fields(got) // "HD c<cas>" and maybe Z/X/W
		if len(fields) < 2 || fields[0] != "HD" || fields[1][0] != 'c' {
			t.Fatalf("mg %s c: %q", key, got)
		}
		cas, err := strconv.ParseUint(fields[1][1:], 10, 64)
		if err != nil {
			t.Fatalf("mg %s c: %q: %v", key, got, err)
		}
		return cas
	}
	f := func(req, want string) {
		t.Helper()
		if got := metaRun(t, s, req); got != want {
			t.Errorf("%q: got %q, want %q", req, got, want)
		}
	}
	q := func(format string, a ...any) string { return fmt.Sprintf(format, a...) }

	f("ms k 2\r\nv1\r\n", "HD\r\n")
	c1 := casOf("k")
	f(q("ms k 2 C%d\r\nv2\r\n", c1), "HD\r\n")
	c2 := casOf("k")
	if c2 == c1 {
		t.Fatalf("CAS did not change on store: %d", c2)
	}
	f(q("ms k 2 C%d\r\nv3\r\n", c1), "EX\r\n")
	f(q("ms k 2 C%d MA\r\n+a\r\n", c2), "HD\r\n")
	f("mg k v\r\n", "VA 4\r\nv2+a\r\n")
	// An older CAS with I stores the value but marks it stale.
	f(q("ms k 2 I C%d\r\nv4\r\n", c1), "HD\r\n")
	f("mg k v\r\n", "VA 2 X W\r\nv4\r\n")
	// md C: only the current CAS deletes; md I hands out a new one.
	c3 := casOf("k")
	f(q("md k C%d\r\n", c1), "EX\r\n")
	f(q("md k I C%d\r\n", c3), "HD\r\n")
	if c4 := casOf("k"); c4 == c3 {
		t.Errorf("md I kept CAS %d", c4)
	}
	f(q("md k C%d\r\n", casOf("k")), "HD\r\n")
	// ma C: the counter's CAS, and c returns the new one.
	f("ma n N0 J10\r\n", "HD\r\n")
	cn := casOf("n")
	f(q("ma n C%d v\r\n", cn+100), "EX\r\n")
	got := metaRun(t, s, q("ma n C%d v c\r\n", cn))
	next, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSuffix(got, "\r\n11\r\n"), "VA 2 c"), 10, 64)
	if err != nil || next == cn || next != casOf("n") {
		t.Errorf("ma C: got %q (new CAS %d, old %d)", got, next, cn)
	}
}

// TestMetaRecovery checks that a refused too-large value leaves the session
// usable for the next request.
func TestMetaRecovery(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	st := s.execMeta([]byte("ms big 2000000 T0\r\n"))
	if st.n != 19 || st.swallow != 2000002 || !strings.HasPrefix(string(s.out), "SERVER_ERROR object too large") {
		t.Errorf("too large: step %+v, out %q", st, s.out)
	}
	if got := metaRun(t, s, "mn\r\n"); got != "MN\r\n" {
		t.Errorf("after too large: %q", got)
	}
}
