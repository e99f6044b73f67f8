package server

// Script tests for the classic text protocol. Each file under
// testdata/text/ is a conversation with one server:
//
//	# comment
//	> set a 0 0 1        sent, followed by \r\n
//	>| get a\n           sent exactly as written (no \r\n added)
//	< STORED             expected reply line, followed by \r\n
//	<| VALUE             expected bytes exactly as written
//	<closed              the server closes the connection; the script reconnects
//	@now +5              advance the clock (the file is then not replayed on memcached)
//	@flag -C             server option, for both Petrel and memcached (-C, -A)
//	@petrel-only         do not replay this file against memcached
//
// In sent and expected text, \r \n \t \0 \\ and \xHH are escapes, {c*N} is
// the character c repeated N times, and in expected text {n} matches any
// decimal number (CAS values differ between servers) and {*} anything. Replies are compared
// when the script moves from expecting back to sending, and at the end.
//
// TestTextScripts runs every file through execText twice: with each group of
// sent lines in one buffer, and one byte at a time (so every request is seen
// incomplete first). TestTextScriptsMemcached replays the same files against
// a real memcached 1.6.18 to prove the expectations are memcached's.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"petrel/internal/stats"
)

type textEventKind int

const (
	evSend textEventKind = iota
	evExpect
	evClosed
	evNow
)

type textEvent struct {
	kind textEventKind
	data []byte // send/expect bytes; for evNow the seconds in decimal
	line int
}

type textScript struct {
	name       string
	events     []textEvent
	flags      []string
	petrelOnly bool
}

var textRepeat = regexp.MustCompile(`\{(\\x[0-9a-fA-F]{2}|\\.|[^\\])\*([0-9]+)\}`)

// textUnescape expands {c*N} and the backslash escapes.
func textUnescape(s string) ([]byte, error) {
	var err error
	s = textRepeat.ReplaceAllStringFunc(s, func(m string) string {
		sub := textRepeat.FindStringSubmatch(m)
		c, e := textUnescape(sub[1])
		n, _ := strconv.Atoi(sub[2])
		if e != nil {
			err = e
		}
		return strings.Repeat(string(c), n)
	})
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b = append(b, s[i])
			continue
		}
		i++
		switch s[i] {
		case 'r':
			b = append(b, '\r')
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case '0':
			b = append(b, 0)
		case '\\':
			b = append(b, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("short \\x escape in %q", s)
			}
			v, e := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if e != nil {
				return nil, fmt.Errorf("bad \\x escape in %q: %w", s, e)
			}
			b = append(b, byte(v))
			i += 2
		default:
			b = append(b, '\\', s[i])
		}
	}
	return b, err
}

func loadTextScript(path string) (*textScript, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read script: %w", err)
	}
	sc := &textScript{name: filepath.Base(path)}
	for i, line := range strings.Split(string(raw), "\n") {
		ln := i + 1
		add := func(k textEventKind, text string, crlf bool) error {
			b, err := textUnescape(text)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", path, ln, err)
			}
			if crlf {
				b = append(b, "\r\n"...)
			}
			sc.events = append(sc.events, textEvent{kind: k, data: b, line: ln})
			return nil
		}
		var err error
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, ">| "):
			err = add(evSend, line[3:], false)
		case strings.HasPrefix(line, "> ") || line == ">":
			err = add(evSend, strings.TrimPrefix(strings.TrimPrefix(line, ">"), " "), true)
		case strings.HasPrefix(line, "<| "):
			err = add(evExpect, line[3:], false)
		case line == "<closed":
			sc.events = append(sc.events, textEvent{kind: evClosed, line: ln})
		case strings.HasPrefix(line, "< ") || line == "<":
			err = add(evExpect, strings.TrimPrefix(strings.TrimPrefix(line, "<"), " "), true)
		case strings.HasPrefix(line, "@now +"):
			sc.events = append(sc.events, textEvent{kind: evNow, data: []byte(line[6:]), line: ln})
			sc.petrelOnly = true
		case strings.HasPrefix(line, "@flag "):
			sc.flags = append(sc.flags, strings.TrimSpace(line[6:]))
		case line == "@petrel-only":
			sc.petrelOnly = true
		default:
			err = fmt.Errorf("%s:%d: unknown line %q", path, ln, line)
		}
		if err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// textWantRE turns expected bytes into an anchored pattern with {n}
// matching any number.
func textWantRE(want []byte) *regexp.Regexp {
	parts := strings.Split(string(want), "{*}")
	for i, p := range parts {
		nums := strings.Split(p, "{n}")
		for j, q := range nums {
			nums[j] = regexp.QuoteMeta(q)
		}
		parts[i] = strings.Join(nums, `[0-9]+`)
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(parts, `.*`) + `\z`)
}

func loadTextScripts(t *testing.T) []*textScript {
	t.Helper()
	files, err := filepath.Glob("testdata/text/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
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

const textTestNow = 1_700_000_000

func newTextServer(t testing.TB, flags []string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MemoryMB = 16
	for _, f := range flags {
		switch f {
		case "-C":
			cfg.NoCAS = true
		case "-A":
			cfg.EnableShutdown = true
		default:
			t.Fatalf("unknown @flag %q", f)
		}
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func newTextSession(srv *Server, now int64) *session {
	return &session{srv: srv, cache: srv.cache, stats: srv.reg.NewWorker(), now: now}
}

// textConn plays the connection layer for a script: it buffers input, runs
// execText over every complete request and honours swallow and close.
type textConn struct {
	s       *session
	in      []byte
	swallow int
	closed  bool
}

func (c *textConn) feed(b []byte) {
	if c.closed {
		return
	}
	if c.swallow > 0 {
		k := min(c.swallow, len(b))
		c.swallow -= k
		b = b[k:]
	}
	c.in = append(c.in, b...)
	for len(c.in) > 0 && !c.closed && c.swallow == 0 {
		st := c.s.execText(c.in)
		if st.n == 0 {
			c.closed = st.close
			return
		}
		c.in = c.in[st.n:]
		k := min(st.swallow, len(c.in))
		c.in = c.in[k:]
		c.swallow = st.swallow - k
		c.closed = st.close
	}
	if c.closed {
		c.in = nil
	}
}

// runTextScript runs sc against execText; bytewise feeds input one byte at
// a time.
func runTextScript(t *testing.T, sc *textScript, bytewise bool) {
	srv := newTextServer(t, sc.flags)
	now := int64(textTestNow)
	c := &textConn{s: newTextSession(srv, now)}
	var want []byte
	expecting, line := false, 0
	check := func() {
		t.Helper()
		if !textWantRE(want).Match(c.s.out) {
			t.Errorf("%s:%d: got\n%q\nwant\n%q", sc.name, line, c.s.out, want)
		}
		c.s.out, want, expecting = c.s.out[:0], want[:0], false
	}
	for _, ev := range sc.events {
		if ev.kind != evExpect && expecting {
			check()
		}
		switch ev.kind {
		case evSend:
			if bytewise {
				for i := range ev.data {
					c.feed(ev.data[i : i+1])
				}
			} else {
				c.feed(ev.data)
			}
		case evExpect:
			want = append(want, ev.data...)
			expecting, line = true, ev.line
		case evClosed:
			check()
			if !c.closed {
				t.Errorf("%s:%d: connection not closed", sc.name, ev.line)
			}
			c = &textConn{s: newTextSession(srv, now)}
		case evNow:
			d, err := strconv.ParseInt(string(ev.data), 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", sc.name, ev.line, err)
			}
			now += d
			c.s.now = now
		}
	}
	line = len(sc.events)
	check()
	if c.closed {
		t.Errorf("%s: connection closed at the end without <closed", sc.name)
	}
}

func TestTextScripts(t *testing.T) {
	for _, sc := range loadTextScripts(t) {
		t.Run(sc.name, func(t *testing.T) { runTextScript(t, sc, false) })
		t.Run(sc.name+"/bytewise", func(t *testing.T) { runTextScript(t, sc, true) })
	}
}

// TestTextScriptsMemcached replays the scripts against memcached itself.
func TestTextScriptsMemcached(t *testing.T) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not installed")
	}
	if testing.Short() {
		t.Skip("starts memcached")
	}
	for _, sc := range loadTextScripts(t) {
		if sc.petrelOnly {
			continue
		}
		t.Run(sc.name, func(t *testing.T) { replayTextMemcached(t, bin, sc) })
	}
}

func startTextMemcached(t *testing.T, bin string, flags []string) string {
	t.Helper()
	for try := 0; try < 5; try++ {
		port := 20000 + int(time.Now().UnixNano()%20000)
		// Without its background LRU threads memcached is deterministic:
		// they briefly hold item references, which decides whether incr
		// rewrites a value in place (space padded) or anew.
		args := append([]string{"-u", "nobody", "-l", "127.0.0.1", "-U", "0", "-p", strconv.Itoa(port),
			"-o", "no_lru_crawler,no_lru_maintainer"}, flags...)
		if os.Geteuid() != 0 {
			args = args[2:]
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start memcached: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for i := 0; i < 50; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return addr
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Kill()
	}
	t.Fatal("memcached did not start")
	return ""
}

func replayTextMemcached(t *testing.T, bin string, sc *textScript) {
	addr := startTextMemcached(t, bin, sc.flags)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial memcached: %v", err)
		}
		return c
	}
	conn := dial()
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	rd := bufio.NewReader(conn)
	var got, want []byte
	expecting, line := false, 0
	// read collects replies until they match want or nothing more comes.
	read := func(re *regexp.Regexp, untilEOF bool) (eof bool) {
		deadline := time.Now().Add(3 * time.Second)
		buf := make([]byte, 64<<10)
		for !re.Match(got) || untilEOF {
			conn.SetReadDeadline(deadline)
			n, err := rd.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return false
				}
				return true
			}
		}
		return false
	}
	check := func() {
		re := textWantRE(want)
		read(re, false)
		if !re.Match(got) {
			t.Errorf("%s:%d: memcached sent\n%q\nscript expects\n%q", sc.name, line, got, want)
		}
		got, want, expecting = got[:0], want[:0], false
	}
	for _, ev := range sc.events {
		if ev.kind != evExpect && expecting {
			check()
		}
		switch ev.kind {
		case evSend:
			if conn == nil {
				conn = dial()
				rd = bufio.NewReader(conn)
			}
			if _, err := conn.Write(ev.data); err != nil {
				t.Fatalf("%s:%d: write: %v", sc.name, ev.line, err)
			}
		case evExpect:
			want = append(want, ev.data...)
			expecting, line = true, ev.line
		case evClosed:
			check()
			if !read(textWantRE(nil), true) || len(got) > 0 {
				t.Errorf("%s:%d: memcached did not close (sent %q)", sc.name, ev.line, got)
			}
			got = got[:0]
			conn.Close()
			conn = nil // redialled by the next send
		}
	}
	if conn == nil {
		return
	}
	line = len(sc.events)
	check()
	// Nothing more may be pending: a meta no-op must be answered next.
	conn.Write([]byte("mn\r\n"))
	want = append(want[:0], "MN\r\n"...)
	check()
}

// textRun sends in through a fresh session on srv and returns the replies.
func textRun(s *session, in string) string {
	s.out = s.out[:0]
	c := &textConn{s: s}
	c.feed([]byte(in))
	return string(s.out)
}

// textCounterScript exercises every counter the text executor keeps.
const textCounterScript = "set a 0 0 1\r\n1\r\nset e 0 0 1\r\nx\r\nset x 0 -1 1\r\nx\r\n" +
	"get a b x\r\ngets a\r\ncas a 0 0 1 99999\r\nx\r\ncas zz 0 0 1 1\r\nx\r\n" +
	"incr a 1\r\nincr zz 1\r\ndecr a 1\r\ndecr zz 1\r\nincr e 1\r\ndelete a\r\ndelete a\r\n" +
	"touch e 0\r\ntouch zz 0\r\ngat 0 e zz\r\nset f 0 0 1\r\nx\r\nflush_all\r\nflush_all x\r\n" +
	"get f\r\nset y 0 0 1\r\nxy\r\nfoo\r\n"

var textCounters = []stats.Counter{
	stats.CmdGet, stats.CmdSet, stats.CmdFlush, stats.CmdTouch, stats.GetHits, stats.GetMisses,
	stats.GetExpired, stats.GetFlushed, stats.DeleteHits, stats.DeleteMisses, stats.IncrHits,
	stats.IncrMisses, stats.DecrHits, stats.DecrMisses, stats.CasHits, stats.CasMisses,
	stats.CasBadval, stats.TouchHits, stats.TouchMisses,
}

func TestTextCounters(t *testing.T) {
	s := newTextSession(newTextServer(t, nil), textTestNow)
	textRun(s, textCounterScript)
	f := func(c stats.Counter, want uint64) {
		t.Helper()
		if got := s.stats.Load(c); got != want {
			t.Errorf("%s = %d, want %d", c.Name(), got, want)
		}
	}
	f(stats.CmdGet, 5)
	f(stats.CmdSet, 7)
	f(stats.GetHits, 2)
	f(stats.GetMisses, 3)
	f(stats.GetExpired, 1)
	f(stats.GetFlushed, 1)
	f(stats.CasBadval, 1)
	f(stats.CasMisses, 1)
	f(stats.CasHits, 0)
	f(stats.IncrHits, 1)
	f(stats.IncrMisses, 1)
	f(stats.DecrHits, 1)
	f(stats.DecrMisses, 1)
	f(stats.DeleteHits, 1)
	f(stats.DeleteMisses, 1)
	f(stats.CmdTouch, 4)
	f(stats.TouchHits, 2)
	f(stats.TouchMisses, 2)
	f(stats.CmdFlush, 2)
	f(stats.ProtocolErrors, 4) // flush_all x, the bad chunk, its stray \n, foo
}

// TestTextCountersMemcached runs textCounterScript on memcached and checks
// that its `stats` agree with Petrel's counters.
func TestTextCountersMemcached(t *testing.T) {
	bin, err := exec.LookPath("memcached")
	if err != nil || testing.Short() {
		t.Skip("needs memcached")
	}
	conn, err := net.Dial("tcp", startTextMemcached(t, bin, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	readUntil := func(suffix string) string {
		var got []byte
		buf := make([]byte, 4096)
		for !bytes.HasSuffix(got, []byte(suffix)) {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("read memcached: %v (got %q)", err, got)
			}
			got = append(got, buf[:n]...)
		}
		return string(got)
	}
	conn.Write([]byte(textCounterScript + "mn\r\n"))
	mcReplies := strings.TrimSuffix(readUntil("MN\r\n"), "MN\r\n")
	conn.Write([]byte("stats\r\n"))
	mc := map[string]string{}
	for _, line := range strings.Split(readUntil("END\r\n"), "\r\n") {
		if f := strings.Fields(line); len(f) == 3 {
			mc[f[1]] = f[2]
		}
	}
	s := newTextSession(newTextServer(t, nil), textTestNow)
	if got := textRun(s, textCounterScript); !textWantRE([]byte(strings.ReplaceAll(mcReplies, "VALUE a 0 1 1\r\n", "VALUE a 0 1 {n}\r\n"))).MatchString(got) {
		t.Errorf("replies differ:\npetrel    %q\nmemcached %q", got, mcReplies)
	}
	for _, c := range textCounters {
		if got := strconv.FormatUint(s.stats.Load(c), 10); got != mc[c.Name()] {
			t.Errorf("%s: petrel %s, memcached %s", c.Name(), got, mc[c.Name()])
		}
	}
}

func TestTextAllocs(t *testing.T) {
	srv := newTextServer(t, nil)
	s := newTextSession(srv, textTestNow)
	get := []byte("get k\r\n")
	set := []byte("set k 0 0 5\r\nhello\r\n")
	run := func() {
		s.out = s.out[:0]
		s.execText(set)
		s.execText(get)
	}
	run()
	if got := string(s.out); got != "STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n" {
		t.Fatalf("warm-up replied %q", got)
	}
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Errorf("set+get allocates %v times per run", n)
	}
}

func FuzzExecText(f *testing.F) {
	for _, s := range []string{"get a\r\n", "set a 0 0 1\r\nx\r\n", "incr a 1\r\n", "gat 1 a b\r\n",
		"append a 0 0 2 noreply\r\nxy\r\n", "decr a 5\r\n", "stats detail dump\r\n"} {
		f.Add([]byte(s), []byte("k"), uint32(5), []byte("value"))
	}
	srv := newTextServer(f, nil)
	f.Fuzz(func(t *testing.T, junk, key []byte, flags uint32, value []byte) {
		s := newTextSession(srv, textTestNow)
		// Arbitrary input must not panic, whatever it does to the cache.
		(&textConn{s: s}).feed(junk)
		if len(key) == 0 || len(key) > 250 || bytes.ContainsAny(key, " \n\x00") || len(value) > 4096 {
			return
		}
		in := fmt.Sprintf("set %s %d 0 %d\r\n%s\r\nget %s\r\n", key, flags, len(value), value, key)
		want := fmt.Sprintf("STORED\r\nVALUE %s %d %d\r\n%s\r\nEND\r\n", key, flags, len(value), value)
		if got := textRun(newTextSession(srv, textTestNow), in); got != want {
			t.Fatalf("set then get:\n%q\nreplied\n%q\nwant\n%q", in, got, want)
		}
	})
}

// textRandomCommand returns one random, often malformed, classic command.
func textRandomCommand(rng *rand.Rand) string {
	keys := []string{"a", "b", "c", "nn", "k\x01", strings.Repeat("L", 250), strings.Repeat("L", 251)}
	nums := []string{"0", "1", "7", "-1", "+3", "x", "4294967297", "18446744073709551615", "2147483648", " "}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	key := pick(keys)
	// A get with a key over 250 bytes makes memcached drop the replies of
	// every earlier request it has not yet written, depending on how the
	// pipeline was read; Petrel keeps them. Keep such keys out of gets.
	getKeys := keys[:len(keys)-1]
	noreply := ""
	if rng.IntN(8) == 0 {
		noreply = " noreply"
	}
	value := pick([]string{"", "1", "99", "100", "  5", "abc", "18446744073709551615", "0000000000000000000001"})
	vlen := strconv.Itoa(len(value))
	if rng.IntN(10) == 0 {
		vlen = pick(nums)
	}
	switch rng.IntN(14) {
	case 0, 1, 2:
		return fmt.Sprintf("%s %s %s 0 %s%s\r\n%s\r\n", pick([]string{"set", "add", "replace", "append", "prepend"}), key, pick(nums), vlen, noreply, value)
	case 3:
		return fmt.Sprintf("cas %s %s 0 %s %s%s\r\n%s\r\n", key, pick(nums), vlen, pick(nums), noreply, value)
	case 4, 5:
		return fmt.Sprintf("%s %s %s%s\r\n", pick([]string{"incr", "decr"}), key, pick(nums), noreply)
	case 6, 7:
		return fmt.Sprintf("%s %s %s\r\n", pick([]string{"get", "gets"}), pick(getKeys), pick(getKeys))
	case 8:
		return fmt.Sprintf("%s %s %s %s\r\n", pick([]string{"gat", "gats"}), pick([]string{"0", "100", "x"}), pick(getKeys), pick(getKeys))
	case 9:
		return fmt.Sprintf("delete %s%s%s\r\n", key, pick([]string{"", " 0", " 1"}), noreply)
	case 10:
		return fmt.Sprintf("touch %s %s%s\r\n", key, pick([]string{"0", "100", "x"}), noreply)
	case 11:
		return pick([]string{"verbosity 1\r\n", "stats detail on\r\n", "flush_all 0 x y\r\n", "foo bar\r\n", "\r\n", "verbosity 1 noreply\r\n"})
	case 12:
		return fmt.Sprintf("set %s 0 0 %s\r\n%sjunk\r\n", key, vlen, value)
	}
	return fmt.Sprintf("%s %s %s %s %s %s\r\n", pick([]string{"set", "incr", "delete"}), key, pick(nums), pick(nums), pick(nums), pick(nums))
}

// TestTextDifferential sends the same random command stream to memcached
// and to execText and compares the replies, CAS values aside. Each command
// is followed by a meta no-op and its reply awaited: in a pipeline memcached
// holds references to items it has yet to send, which (like its LRU threads)
// changes how incr rewrites them.
func TestTextDifferential(t *testing.T) {
	bin, err := exec.LookPath("memcached")
	if err != nil || testing.Short() {
		t.Skip("needs memcached")
	}
	conn, err := net.Dial("tcp", startTextMemcached(t, bin, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	casRE := regexp.MustCompile(`(?m)^(VALUE \S+ \d+ \d+) \d+\r$`)
	s := newTextSession(newTextServer(t, nil), textTestNow)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64<<10)
	var history []string
	for i := 0; i < 3000; i++ {
		// Empty lines (each an ERROR) end a data block shorter than its
		// length before the no-op.
		cmd := textRandomCommand(rng)
		history = append(history, cmd)
		in := cmd + strings.Repeat("\r\n", 6) + "mn\r\n"
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte(in))
		var mc []byte
		for !bytes.HasSuffix(mc, []byte("MN\r\n")) {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("read memcached: %v", err)
			}
			mc = append(mc, buf[:n]...)
		}
		got := casRE.ReplaceAllString(textRun(s, in), "$1 C\r")
		want := casRE.ReplaceAllString(string(mc), "$1 C\r")
		if got != want {
			t.Fatalf("command %d: %q\npetrel    %q\nmemcached %q\nafter %q", i, in, got, want, history[max(0, i-20):i])
		}
	}
}
