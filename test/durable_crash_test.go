package test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDurableCrashLoop drives writes from several connections, kills the
// server with SIGKILL at random moments, restarts it on the same data
// directory and checks that every acknowledged write is there: for each key
// the value after a restart must be the last acknowledged one, or the result
// of the one operation that was in flight on it when the server died. A
// value that was never written, or an acknowledged write that is missing,
// fails the test.
//
// Each key has one writer (its connection), so the acknowledged history of
// a key is a sequence and its expected value is exact. PETREL_CRASH_SEED and
// PETREL_CRASH_ROUNDS override the fixed defaults. Both durability modes
// are run; requests mix the text and meta protocols.
func TestDurableCrashLoop(t *testing.T) {
	// async acknowledges once the group is written to the operating system,
	// so a process crash must lose nothing acknowledged there either.
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) { crashLoop(t, mode) })
	}
}

func crashLoop(t *testing.T, mode string) {
	seed, rounds := uint64(20261121), 16
	if testing.Short() {
		rounds = 4
	}
	if v, err := strconv.ParseUint(os.Getenv("PETREL_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	if v, err := strconv.Atoi(os.Getenv("PETREL_CRASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	t.Logf("seed %d (PETREL_CRASH_SEED), %d rounds", seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()

	const clients, keysPerClient = 4, 6
	model := make([][]keyModel, clients)
	for c := range model {
		model[c] = make([]keyModel, keysPerClient)
	}
	checked, acked := 0, 0
	for round := 0; round < rounds; round++ {
		s := startDurable(t, dir, "--durability", mode)
		checked += verifyCrashModel(t, s, model, round)
		if t.Failed() {
			return
		}
		var wg sync.WaitGroup
		counts := make([]int, clients)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			crng := rand.New(rand.NewPCG(rng.Uint64(), uint64(c)))
			go func(c int) {
				defer wg.Done()
				counts[c] = crashClient(s, c, round, model[c], crng)
			}(c)
		}
		// Kill at a random moment while the clients are writing.
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		s.kill()
		wg.Wait()
		for _, n := range counts {
			acked += n
		}
	}
	s := startDurable(t, dir, "--durability", mode)
	checked += verifyCrashModel(t, s, model, rounds)
	t.Logf("%d acknowledged writes over %d crashes; %d key states checked after restarts", acked, rounds, checked)
	if acked == 0 {
		t.Error("no write was acknowledged: the test checked nothing")
	}
}

// keyModel is what one key may hold: the last acknowledged state, and the
// state the in-flight (unacknowledged) operation would leave, if any.
type keyModel struct {
	val      string
	present  bool
	inflight bool
	ifVal    string
	ifPres   bool
}

func crashKey(client, i int) string { return fmt.Sprintf("c%d-k%d", client, i) }

// crashClient writes until the connection breaks and returns the number of
// acknowledged writes. Every operation is recorded as in flight before it
// is sent and as acknowledged once its reply is read.
func crashClient(s *server, client, round int, keys []keyModel, rng *rand.Rand) int {
	mc, err := dialMC(s)
	if err != nil {
		return 0
	}
	defer mc.c.Close()
	acked := 0
	for n := 0; ; n++ {
		i := rng.IntN(len(keys))
		k, key := &keys[i], crashKey(client, i)
		var req, okReply string
		switch op := rng.IntN(10); {
		case op < 3 || !k.present: // set a unique numeric value
			v := strconv.Itoa((client*1000+round)*100000 + n)
			req, okReply = fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(v), v), "STORED"
			k.inflight, k.ifVal, k.ifPres = true, v, true
		case op < 5: // the same with meta set
			v := strconv.Itoa((client*1000+round)*100000 + n)
			req, okReply = fmt.Sprintf("ms %s %d\r\n%s\r\n", key, len(v), v), "HD"
			k.inflight, k.ifVal, k.ifPres = true, v, true
		case op < 6:
			req, okReply = "delete "+key+"\r\n", "DELETED"
			k.inflight, k.ifVal, k.ifPres = true, "", false
		case op < 7:
			req, okReply = "md "+key+"\r\n", "HD"
			k.inflight, k.ifVal, k.ifPres = true, "", false
		case op < 9:
			cur, _ := strconv.ParseUint(k.val, 10, 64)
			v := strconv.FormatUint(cur+1, 10)
			req, okReply = "incr "+key+" 1\r\n", v
			k.inflight, k.ifVal, k.ifPres = true, v, true
		default: // gets, then cas
			got, err := mc.gets(key)
			if err != nil {
				return acked
			}
			g, ok := got[key]
			if !ok || g.data != k.val {
				return acked // the model is wrong; verification will say so
			}
			v := strconv.Itoa((client*1000+round)*100000 + n)
			req, okReply = fmt.Sprintf("cas %s 0 0 %d %d\r\n%s\r\n", key, len(v), g.cas, v), "STORED"
			k.inflight, k.ifVal, k.ifPres = true, v, true
		}
		reply, err := mc.line(req)
		if err != nil {
			return acked // in flight when the server died
		}
		if reply != okReply {
			// Not applied: a single writer per key makes any other reply a
			// model error, which verification reports.
			k.inflight = false
			k.val, k.present = "!unexpected reply "+reply, true
			return acked
		}
		k.inflight = false
		k.val, k.present = k.ifVal, k.ifPres
		acked++
	}
}

// verifyCrashModel reads every key after a restart and checks it against
// the model, then makes what it read the model (resolving in-flight
// operations). It returns the number of keys checked.
func verifyCrashModel(t *testing.T, s *server, model [][]keyModel, round int) int {
	t.Helper()
	mc := mustDialMC(t, s)
	n := 0
	for c := range model {
		keys := make([]string, len(model[c]))
		for i := range keys {
			keys[i] = crashKey(c, i)
		}
		got, err := mc.gets(keys...)
		if err != nil {
			t.Fatalf("round %d: reading back: %v", round, err)
		}
		for i := range model[c] {
			k := &model[c][i]
			g, present := got[keys[i]]
			ok := present == k.present && (!present || g.data == k.val)
			if k.inflight {
				ok = ok || present == k.ifPres && (!present || g.data == k.ifVal)
			}
			if !ok {
				want := fmt.Sprintf("present=%v %q", k.present, k.val)
				if k.inflight {
					want += fmt.Sprintf(" or (in flight) present=%v %q", k.ifPres, k.ifVal)
				}
				t.Errorf("round %d: %s after restart: present=%v %q, want %s", round, keys[i], present, strings.TrimSpace(g.data), want)
			}
			k.val, k.present, k.inflight = g.data, present, false
			n++
		}
	}
	return n
}
