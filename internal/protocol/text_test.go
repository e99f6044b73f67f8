package protocol

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// textSummary renders a parsed request compactly for table tests.
func textSummary(r *TextRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cmd=%d", r.Cmd)
	if r.Err != TextOK {
		fmt.Fprintf(&b, " err=%d", r.Err)
	}
	if len(r.Keys) > 0 {
		fmt.Fprintf(&b, " keys=%q", r.Keys)
	}
	if r.Flags != 0 {
		fmt.Fprintf(&b, " flags=%d", r.Flags)
	}
	if r.ExptimeSet {
		fmt.Fprintf(&b, " exp=%d", r.Exptime)
	}
	if r.VLen != 0 {
		fmt.Fprintf(&b, " vlen=%d", r.VLen)
	}
	if r.CAS != 0 {
		fmt.Fprintf(&b, " cas=%d", r.CAS)
	}
	if r.Delta != 0 {
		fmt.Fprintf(&b, " delta=%d", r.Delta)
	}
	if r.Level != 0 {
		fmt.Fprintf(&b, " level=%d", r.Level)
	}
	if r.NoReply {
		b.WriteString(" noreply")
	}
	return b.String()
}

func TestParseText(t *testing.T) {
	var r TextRequest
	f := func(in string, wantN int, want string) {
		t.Helper()
		n := r.Parse([]byte(in))
		if got := textSummary(&r); n != wantN || got != want {
			t.Errorf("Parse(%q) = %d, %s; want %d, %s", in, n, got, wantN, want)
		}
	}
	f("get a\r\n", 7, `cmd=1 keys=["a"]`)
	f("get a", 0, `cmd=0`)
	f("get a\n", 6, `cmd=1 keys=["a"]`)
	f("  get  a  b \r\nnext", 14, `cmd=1 keys=["a" "b"]`)
	f("get a\x00b\r\n", 9, `cmd=1 keys=["a"]`)
	f("get a\r\r\n", 8, `cmd=1 keys=["a\r"]`)
	f("gets a\r\n", 8, `cmd=2 keys=["a"]`)
	f("gat 10 a b\r\n", 12, `cmd=3 keys=["a" "b"] exp=10`)
	f("gats -1 a\r\n", 11, `cmd=4 keys=["a"] exp=-1`)
	f("gat x a\r\n", 9, `cmd=3 err=4`)
	f("gat 10\r\n", 8, `cmd=3 exp=10`)
	f("get\r\n", 5, `cmd=0 err=1`)
	f("\r\n", 2, `cmd=0 err=1`)
	f("g\r\n", 3, `cmd=0 err=1`)
	f("GET a\r\n", 7, `cmd=0 err=1`)
	f("set k 1 2 3\r\nabc\r\n", 13, `cmd=5 keys=["k"] flags=1 exp=2 vlen=3`)
	f("set k 1 2 3 noreply\r\n", 21, `cmd=5 keys=["k"] flags=1 exp=2 vlen=3 noreply`)
	f("set k 1 2 3 junk\r\n", 18, `cmd=5 keys=["k"] flags=1 exp=2 vlen=3`)
	f("set k 1 2\r\n", 11, `cmd=0 err=1`)
	f("set k 4294967297 2147483648 1\r\n", 31, `cmd=5 keys=["k"] flags=1 exp=-2147483648 vlen=1`)
	f("set k 0 0 -1\r\n", 14, `cmd=5 err=2 keys=["k"]`)
	f("set k x 0 1 noreply\r\n", 21, `cmd=5 err=2 keys=["k"] noreply`)
	f("cas k 0 0 1 77\r\n", 16, `cmd=10 keys=["k"] exp=0 vlen=1 cas=77`)
	f("cas k 0 0 1\r\n", 13, `cmd=0 err=1`)
	f("append k 0 0 1\r\n", 16, `cmd=8 keys=["k"] exp=0 vlen=1`)
	f("incr k 5\r\n", 10, `cmd=12 keys=["k"] delta=5`)
	f("decr k x noreply\r\n", 18, `cmd=13 err=5 keys=["k"] noreply`)
	f("delete k\r\n", 10, `cmd=11 keys=["k"]`)
	f("delete k 0\r\n", 12, `cmd=11 keys=["k"]`)
	f("delete k 1\r\n", 12, `cmd=11 err=3`)
	f("delete k 0 noreply\r\n", 20, `cmd=11 keys=["k"] noreply`)
	f("touch k 9\r\n", 11, `cmd=14 keys=["k"] exp=9`)
	f("flush_all\r\n", 11, `cmd=15`)
	f("flush_all noreply\r\n", 19, `cmd=15 noreply`)
	f("flush_all 5 noreply\r\n", 21, `cmd=15 exp=5 noreply`)
	f("flush_all x\r\n", 13, `cmd=15 err=4`)
	f("verbosity 1\r\n", 13, `cmd=17 level=1`)
	f("version\r\n", 9, `cmd=16`)
	f("quit\r\n", 6, `cmd=18`)
	f("shutdown graceful\r\n", 19, `cmd=19 keys=["graceful"]`)
	f("stats detail dump\r\n", 19, `cmd=20 keys=["detail" "dump"]`)
	f("mg k v\r\n", 8, `cmd=21`)
	f(" mn\r\n", 5, `cmd=21`)
	f("mz\r\n", 4, `cmd=0 err=1`)
	f("set "+strings.Repeat("k", 251)+" 0 0 1\r\n", 263, `cmd=5 err=2 keys=["`+strings.Repeat("k", 251)+`"]`)
	f(strings.Repeat("x", MaxLineLen+1), 0, `cmd=0 err=6`)
	f("get "+strings.Repeat("x", MaxLineLen), 0, `cmd=0`)
	f("gat 0 "+strings.Repeat("x", MaxLineLen), 0, `cmd=0 err=6`)
}

func TestParseTextManyKeys(t *testing.T) {
	var r TextRequest
	f := func(n int) {
		t.Helper()
		var line bytes.Buffer
		line.WriteString("get")
		for i := range n {
			fmt.Fprintf(&line, " k%d", i)
		}
		line.WriteString("\r\n")
		if got := r.Parse(line.Bytes()); got != line.Len() || r.Err != TextOK || len(r.Keys) != n {
			t.Fatalf("%d keys: n=%d err=%d keys=%d", n, got, r.Err, len(r.Keys))
		}
		for i, k := range r.Keys {
			if want := fmt.Sprintf("k%d", i); string(k) != want {
				t.Fatalf("%d keys: key %d = %q, want %q", n, i, k, want)
			}
		}
	}
	for _, n := range []int{1, 21, 22, 23, 24, 25, 100, 700} {
		f(n)
	}
}

func TestTextData(t *testing.T) {
	var r TextRequest
	f := func(in string, wantData string, complete, ok bool) {
		t.Helper()
		r.Parse([]byte(in))
		d, c, o := r.Data([]byte(in))
		if string(d) != wantData || c != complete || o != ok {
			t.Errorf("Data(%q) = %q, %v, %v; want %q, %v, %v", in, d, c, o, wantData, complete, ok)
		}
	}
	f("set k 0 0 3\r\nabc\r\n", "abc", true, true)
	f("set k 0 0 3\r\nabc\r", "", false, false)
	f("set k 0 0 3\r\nabcd\r\n", "abc", true, false)
	f("set k 0 0 0\r\n\r\n", "", true, true)
}

func TestTextNumbers(t *testing.T) {
	u := func(in string, want uint64, ok bool) {
		t.Helper()
		if got, gotOK := parseUint64([]byte(in)); got != want || gotOK != ok {
			t.Errorf("parseUint64(%q) = %d, %v; want %d, %v", in, got, gotOK, want, ok)
		}
	}
	u("0", 0, true)
	u("18446744073709551615", 1<<64-1, true)
	u("18446744073709551616", 0, false)
	u("+5", 5, true)
	u("-0", 0, true)
	u("-1", 0, false)
	u("-18446744073709551615", 1, true) // strtoull negates; memcached only checks the sign bit
	u("\t7", 7, true)
	u("7\tjunk", 7, true)
	u("7a", 0, false)
	u("", 0, false)
	u("-", 0, false)
	u("99 ", 99, true)
	i := func(in string, want int64, ok bool) {
		t.Helper()
		if got, gotOK := textInt([]byte(in)); got != want || gotOK != ok {
			t.Errorf("textInt(%q) = %d, %v; want %d, %v", in, got, gotOK, want, ok)
		}
	}
	i("-1", -1, true)
	i("2147483647", 2147483647, true)
	i("2147483648", -2147483648, true)
	i("-2147483649", 2147483647, true)
	i("9223372036854775807", -1, true)
	i("9223372036854775808", 0, false)
	i("-9223372036854775808", 0, true)
	i("x", 0, false)
}

func TestTextReplies(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(AppendValue(nil, []byte("k"), 5, []byte("hi"), 9, false), "VALUE k 5 2\r\nhi\r\n")
	f(AppendValue(nil, []byte("k"), 0, nil, 9, true), "VALUE k 0 0 9\r\n\r\n")
	f(AppendLine(nil, TextErrDelete.Reply()), "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n")
	f(AppendUintLine(nil, 1<<64-1), "18446744073709551615\r\n")
	f(AppendStat(nil, "pid", "1"), "STAT pid 1\r\n")
}

func TestParseTextAllocs(t *testing.T) {
	var r TextRequest
	get := []byte("get a b c d e f\r\n")
	set := []byte("set k 0 0 5\r\nhello\r\n")
	if n := testing.AllocsPerRun(100, func() {
		r.Parse(get)
		r.Parse(set)
		r.Data(set)
	}); n != 0 {
		t.Errorf("Parse allocates %v times per run", n)
	}
}

// FuzzParseText checks that any input parses without panicking, that the
// consumed length is a complete line, and that keys alias the line.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"get a b c\r\n", "gets a\n", "gat 10 a\r\n", "set k 0 0 1\r\nx\r\n",
		"cas k 0 0 1 5 noreply\r\nx\r\n", "incr k 1\r\n", "delete k 0\r\n",
		"flush_all 10 noreply\r\n", "stats detail on\r\n", "mg k v\r\n",
		"get a\x00b\r\n", "  set   k 1 2 3  \r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r TextRequest
		n := r.Parse(in)
		if n == 0 {
			if bytes.IndexByte(in, '\n') >= 0 {
				t.Fatalf("complete line reported incomplete")
			}
			return
		}
		if n > len(in) || in[n-1] != '\n' || bytes.IndexByte(in[:n-1], '\n') >= 0 {
			t.Fatalf("n=%d is not the first line of %q", n, in)
		}
		for _, k := range r.Keys {
			if len(k) > 0 && !bytes.Contains(in[:n], k) {
				t.Fatalf("key %q not in line", k)
			}
			if r.Err == TextOK && r.Cmd != TextStats && r.Cmd != TextShutdown && len(k) > MaxKeyLen {
				t.Fatalf("accepted key of %d bytes", len(k))
			}
		}
		if r.Err == TextOK && r.VLen < 0 {
			t.Fatalf("negative length %d", r.VLen)
		}
		r.Data(in)
	})
}
