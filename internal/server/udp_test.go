package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecodeUDP(t *testing.T) {
	f := func(in []byte, wantOK bool, want udpHeader, wantBody string) {
		t.Helper()
		h, body, ok := decodeUDP(in)
		if ok != wantOK || h != want || string(body) != wantBody {
			t.Errorf("decodeUDP(%x) = %+v %q %v, want %+v %q %v", in, h, body, ok, want, wantBody, wantOK)
		}
	}
	f(nil, false, udpHeader{}, "")
	f([]byte{0, 1, 0, 0, 0, 1, 0}, false, udpHeader{}, "")
	f([]byte{0x12, 0x34, 0, 0, 0, 1, 0, 0}, true, udpHeader{ID: 0x1234, Count: 1}, "")
	f([]byte("\xff\xfe\x00\x02\x00\x03\x00\x00get a\r\n"), true, udpHeader{ID: 0xfffe, Seq: 2, Count: 3}, "get a\r\n")
}

func TestFrameUDP(t *testing.T) {
	f := func(size int) {
		t.Helper()
		reply := make([]byte, size)
		for i := range reply {
			reply[i] = byte(i * 7)
		}
		var got []byte
		var frames []udpHeader
		err := frameUDP(0xbeef, reply, make([]byte, udpMaxDatagram), func(d []byte) error {
			if len(d) > udpMaxDatagram {
				t.Errorf("size %d: datagram of %d bytes", size, len(d))
			}
			h, body, ok := decodeUDP(d)
			if !ok {
				t.Fatalf("size %d: short datagram", size)
			}
			frames = append(frames, h)
			got = append(got, body...)
			return nil
		})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want := (size + udpMaxPayload - 1) / udpMaxPayload
		if len(frames) != want {
			t.Errorf("size %d: %d datagrams, want %d", size, len(frames), want)
		}
		for i, h := range frames {
			if h != (udpHeader{ID: 0xbeef, Seq: uint16(i), Count: uint16(want)}) {
				t.Errorf("size %d: datagram %d header %+v", size, i, h)
			}
		}
		if !bytes.Equal(got, reply) {
			t.Errorf("size %d: reassembled reply differs", size)
		}
	}
	f(0)
	f(1)
	f(udpMaxPayload)
	f(udpMaxPayload + 1)
	f(3030) // memcached: 1400 + 1400 + 254 byte datagrams
}

func TestUDPServesTextRequests(t *testing.T) {
	cfg := testConfig()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fe := newFakeExec()
	srv.exec = func(s *session, buf []byte) step { return fe.exec(s, buf) }
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.udpConns = append(srv.udpConns, uc)
	srv.mu.Unlock()
	done := make(chan struct{})
	go func() { _ = srv.Serve(context.Background()); close(done) }()
	defer func() { srv.Shutdown(); <-done }()

	cl, err := net.DialUDP("udp", nil, uc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(10 * time.Second))
	req := func(id, count uint16, body string) {
		t.Helper()
		d := binary.BigEndian.AppendUint16(nil, id)
		d = binary.BigEndian.AppendUint16(d, 0)
		d = binary.BigEndian.AppendUint16(d, count)
		d = binary.BigEndian.AppendUint16(d, 0)
		if _, err := cl.Write(append(d, body...)); err != nil {
			t.Fatal(err)
		}
	}
	// reply reads datagrams until one whole reply for id has arrived.
	reply := func(id uint16) string {
		t.Helper()
		var out []byte
		buf := make([]byte, 2048)
		for seq := uint16(0); ; seq++ {
			n, err := cl.Read(buf)
			if err != nil {
				t.Fatalf("read reply %d: %v", id, err)
			}
			h, body, ok := decodeUDP(buf[:n])
			if !ok || h.ID != id || h.Seq != seq {
				t.Fatalf("datagram %+v, want id %d seq %d", h, id, seq)
			}
			out = append(out, body...)
			if seq+1 == h.Count {
				return string(out)
			}
		}
	}
	// A multi-datagram request and a truncated one are dropped unanswered;
	// the next request's reply proves nothing was sent for them.
	req(1, 2, "echo dropped\r\n")
	req(2, 1, "echo trunc")
	big := strings.Repeat("b", 3000)
	req(3, 1, "echo "+big+"\r\necho two\r\n")
	if got := reply(3); got != big+"\r\n" {
		t.Errorf("big reply of %d bytes, want %d", len(got), len(big)+2)
	}
	if got := reply(3); got != "two\r\n" {
		t.Errorf("second reply %q", got)
	}
	req(4, 1, "stats conns\r\n")
	if got := reply(4); !strings.Contains(got, ":UDP UDP\r\n") || !strings.Contains(got, "udp:"+uc.LocalAddr().String()) {
		t.Errorf("stats conns over UDP lacks the UDP rows:\n%s", got)
	}
	req(5, 1, "stats\r\n")
	if got := reply(5); !strings.Contains(got, "STAT cmd_get "+strconv.Itoa(2)+"\r\n") {
		t.Errorf("cmd_get not counted over UDP:\n%s", got)
	}
}
