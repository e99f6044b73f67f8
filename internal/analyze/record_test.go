package analyze

import (
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	f := func(line string, ok bool, want Record) {
		t.Helper()
		var r Record
		fs := v1Fields
		err := fs.parse([]byte(line), &r)
		if (err == nil) != ok {
			t.Fatalf("%q: err %v, want ok=%v", line, err, ok)
		}
		if !ok {
			return
		}
		if r.Micros != want.Micros || r.Class != want.Class || string(r.Key) != string(want.Key) || r.KeyLen != want.KeyLen ||
			r.Flags != want.Flags || r.VLen != want.VLen || r.TTL != want.TTL || r.Result != want.Result || r.RLen != want.RLen ||
			r.Gat != want.Gat || r.Append != want.Append {
			t.Fatalf("%q: got %+v, want %+v", line, r, want)
		}
	}
	f("1732200000.123456 1.2.3.4:5 get foo 0 3 0 hit 20", true, Record{Micros: 1732200000123456, Class: ClassRead, Key: []byte("foo"), KeyLen: 3, VLen: 3, Result: ResHit, RLen: 20})
	f("1732200000.1 unix set foo 7 10 -1 stored 8", true, Record{Micros: 1732200000100000, Class: ClassStore, Key: []byte("foo"), KeyLen: 3, Flags: 7, VLen: 10, TTL: -1, Result: ResStored, RLen: 8})
	f("1732200000 udp:1.2.3.4:5 gat k 0 0 100 miss 5", true, Record{Micros: 1732200000000000, Class: ClassRead, Key: []byte("k"), KeyLen: 1, TTL: 100, Result: ResMiss, RLen: 5, Gat: true})
	f("1.000001 c b:appendq k 0 4 0 stored 0", true, Record{Micros: 1000001, Class: ClassStore, Key: []byte("k"), KeyLen: 1, VLen: 4, Result: ResStored, Append: true})
	f("1.0 c b:getkq k 0 0 0 miss 0", true, Record{Micros: 1000000, Class: ClassRead, Key: []byte("k"), KeyLen: 1, Result: ResMiss})
	f("1.0 c b:increment k 0 0 0 ok 8", true, Record{Micros: 1000000, Class: ClassArith, Key: []byte("k"), KeyLen: 1, Result: ResOK, RLen: 8})
	f("1.0 c flush_all - 0 0 0 ok 4", true, Record{Micros: 1000000, Class: ClassFlush, Result: ResOK, RLen: 4})
	f("1.0 c md b64:AAEC 0 0 0 deleted 4", true, Record{Micros: 1000000, Class: ClassDelete, Key: []byte("b64:AAEC"), KeyLen: 3, Result: ResDeleted, RLen: 4})
	f("1.0 c md b64:AAE= 0 0 0 not_found 4", true, Record{Micros: 1000000, Class: ClassDelete, Key: []byte("b64:AAE="), KeyLen: 2, Result: ResNotFound, RLen: 4})
	f("1.0 c touch h:0123456789abcdef 0 0 5 touched 9", true, Record{Micros: 1000000, Class: ClassTouch, Key: []byte("h:0123456789abcdef"), KeyLen: 18, TTL: 5, Result: ResTouched, RLen: 9})
	f("1.0 c frob k 0 0 0 error 7", true, Record{Micros: 1000000, Class: ClassOther, Key: []byte("k"), KeyLen: 1, Result: ResError, RLen: 7})
	f("1.0 [::1]:5 mg k 0 0 30 hit 4", true, Record{Micros: 1000000, Class: ClassRead, Key: []byte("k"), KeyLen: 1, TTL: 30, Result: ResHit, RLen: 4, Gat: true})
	f("1.0 c b:flush_allq - 0 0 0 ok 0", true, Record{Micros: 1000000, Class: ClassFlush, Result: ResOK})
	f("", false, Record{})
	f("1.0 c get k 0 0 0 hit", false, Record{})         // 8 fields
	f("1.0 c get k 0 0 0 hit 1 extra", false, Record{}) // 10 fields
	f("1.0  c get k 0 0 0 hit 1", false, Record{})      // double space
	f("x.0 c get k 0 0 0 hit 1", false, Record{})
	f("1.1234567 c get k 0 0 0 hit 1", false, Record{}) // 7 fraction digits
	f("1.0 c get k 0 -3 0 hit 1", false, Record{})      // negative vlen
	f("1.0 c get k 4294967296 0 0 hit 1", false, Record{})
	f("1.0 c get k 0 0 0 maybe 1", false, Record{})
	f("1.0 c get k 0 0 0 hit 1x", false, Record{})
}

func TestParseHeader(t *testing.T) {
	f := func(line string, isHeader, ok bool, keyCol int) {
		t.Helper()
		fs, h, err := parseHeader([]byte(line))
		if h != isHeader || (err == nil) != ok {
			t.Fatalf("%q: header %v err %v", line, h, err)
		}
		if h && ok && fs.key != keyCol {
			t.Fatalf("%q: key column %d, want %d", line, fs.key, keyCol)
		}
	}
	f(Header, true, true, 3)
	f("# petrel-cmdlog v1 fields=key,time,client,cmd,flags,vlen,ttl,result,rlen,extra", true, true, 0)
	f("# petrel-cmdlog v1 fields=time,client,cmd", true, false, 0)
	f("# petrel-cmdlog v2 fields=time", true, false, 0)
	f("# rotated at 12:00", false, true, 0)
}

func TestReadCountsAndSkips(t *testing.T) {
	log := Header + "\n" +
		"1.0 c get a 0 0 0 miss 5\n" +
		"garbage\n" +
		"# a comment\r\n" +
		"\n" +
		"1.0 c set a 0 3 0 stored 8\r\n" +
		"1.0 c get a 0 3 0 hit 20\n" +
		strings.Repeat("x", 3<<20) + "\n" + // longer than the read buffer
		"# petrel-cmdlog v1 fields=key,time,client,cmd,flags,vlen,ttl,result,rlen\n" +
		"a 2.0 c get 0 3 0 hit 20\n" +
		"2.0 c get a 0 3 0 hit 20\n" + // old order after the new header: malformed
		"a 2.5 c get 0 3 0 hit 20" // no final newline
	a, err := New(Config{Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Read(strings.NewReader(log), "t"); err != nil {
		t.Fatal(err)
	}
	r, err := a.Report()
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines != 11 || r.Comments != 3 || r.Malformed != 3 || r.Records != 5 {
		t.Fatalf("lines %d comments %d malformed %d records %d", r.Lines, r.Comments, r.Malformed, r.Records)
	}
	if r.HitRatio != 0.75 {
		t.Fatalf("hit ratio %v, want 0.75", r.HitRatio)
	}
}

func TestReadRejectsUnknownVersion(t *testing.T) {
	a, _ := New(Config{Rate: 1})
	if err := a.Read(strings.NewReader("# petrel-cmdlog v9 fields=time\n"), "t"); err == nil {
		t.Fatal("v9 log read without error")
	}
}
