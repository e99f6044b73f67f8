package journal

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
)

// failedAppend appends one record after a fault was armed and checks that
// it is never acknowledged, that the journal is now failed and refuses
// appends, and that what was acknowledged before stays readable.
func failedAppend(t *testing.T, j *Local, cause error) {
	t.Helper()
	before := j.DurableSeq()
	r := testRecord(before + 1)
	seq, err := j.Append(&r)
	if err != nil {
		t.Fatalf("append before the fault fired: %v", err)
	}
	err = j.WaitDurable(seq)
	if !errors.Is(err, ErrFailed) || !errors.Is(err, cause) {
		t.Fatalf("wait after %v: %v", cause, err)
	}
	if j.DurableSeq() != before {
		t.Fatalf("durable moved from %d to %d", before, j.DurableSeq())
	}
	if err := j.Err(); !errors.Is(err, cause) {
		t.Fatalf("Err() = %v", err)
	}
	r = testRecord(before + 2)
	if _, err := j.Append(&r); !errors.Is(err, ErrFailed) {
		t.Fatalf("append to a failed journal: %v", err)
	}
	if err := j.WaitDurable(seq); !errors.Is(err, ErrFailed) {
		t.Fatalf("second wait: %v", err)
	}
	if last, err := readChecked(j, 1); err != nil || last != before {
		t.Fatalf("reading a failed journal: %d, %v", last, err)
	}
	if !j.Stats().Failed {
		t.Fatal("stats do not say failed")
	}
}

func TestDiskFaults(t *testing.T) {
	f := func(name string, mode Mode, arm func(*FaultFS), cause error, resumable bool) {
		t.Helper()
		fs := NewFaultFS(nil)
		dir := t.TempDir()
		opts := Options{Dir: dir, FS: fs, Mode: mode}
		if mode == ModeAsync {
			opts.SyncInterval = 1 // every group is due for its sync
		}
		j := openT(t, opts)
		appendN(t, j, 10)
		arm(fs)
		failedAppend(t, j, cause)
		want := testRecord(11)
		if lost := j.Lost(); len(lost) != 1 || lost[0].Seq != 11 || lost[0].Type != want.Type || !bytes.Equal(lost[0].Key, want.Key) {
			t.Fatalf("%s: Lost() = %+v, want the record of sequence 11", name, lost)
		}
		if resumable {
			// Still failing: the probe write fails, and nothing changes.
			if err := j.Resume(); err == nil || !errors.Is(j.Err(), ErrFailed) || len(j.Lost()) != 1 {
				t.Fatalf("%s: resume on a disk still failing: %v (journal: %v, lost %d)", name, err, j.Err(), len(j.Lost()))
			}
		}
		fs.Heal()
		err := j.Resume()
		if lost := j.Lost(); (err == nil) != (len(lost) == 0) {
			t.Fatalf("%s: after Resume (%v), Lost() = %+v", name, err, lost)
		}
		if !resumable {
			if err == nil || !strings.Contains(err.Error(), "cannot resume") {
				t.Fatalf("%s: resume: %v", name, err)
			}
			j.Close()
		} else {
			if err != nil {
				t.Fatalf("%s: resume: %v", name, err)
			}
			appendN(t, j, 5) // sequences 11..15: the failed one is reused
			if err := j.Close(); err != nil {
				t.Fatalf("%s: close: %v", name, err)
			}
		}
		// Reopen: the unacknowledged bytes are gone, by Resume or by
		// recovery's torn-tail rule, and nothing else is.
		j = openT(t, Options{Dir: dir})
		defer j.Close()
		// Without Resume, the failed record may have reached the disk
		// whole: it was never acknowledged, and its outcome is unknown to
		// the client, as with any database.
		last, err := readChecked(j, 1)
		if err != nil || (resumable && last != 15) || (!resumable && last != 10 && last != 11) {
			t.Fatalf("%s: reopened: %d, %v", name, last, err)
		}
		if resumable && len(j.Recovery().Warnings) != 0 {
			t.Fatalf("%s: resume left a tail to repair: %v", name, j.Recovery().Warnings)
		}
	}
	eio := syscall.EIO
	f("write error", ModeSync, func(fs *FaultFS) { fs.FailWrites(0, 0, eio) }, eio, true)
	f("torn write, disk full", ModeSync, func(fs *FaultFS) { fs.FailWrites(0, 13, syscall.ENOSPC) }, syscall.ENOSPC, true)
	f("fsync error", ModeSync, func(fs *FaultFS) { fs.FailSyncs(0, eio) }, eio, true)
	f("async write error", ModeAsync, func(fs *FaultFS) { fs.FailWrites(0, 5, eio) }, eio, true)
	f("async fsync error", ModeAsync, func(fs *FaultFS) { fs.FailSyncs(0, eio) }, eio, false)
}

func TestFaultWhileOthersWait(t *testing.T) {
	// Many appenders in flight when the disk fails: none of their records
	// may be acknowledged, and all of them learn of the failure.
	fs := NewFaultFS(nil)
	j := openT(t, Options{Dir: t.TempDir(), FS: fs})
	defer j.Close()
	appendN(t, j, 3)
	fs.FailSyncs(0, syscall.EIO)
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			r := Record{Type: TypeFlushAll, At: 1}
			seq, err := j.Append(&r)
			if err == nil {
				err = j.WaitDurable(seq)
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; !errors.Is(err, ErrFailed) {
			t.Fatalf("an appender got %v", err)
		}
	}
	if j.DurableSeq() != 3 {
		t.Fatalf("durable %d after the failure", j.DurableSeq())
	}
}

func TestResumeRefusesDamagedTail(t *testing.T) {
	fs := newMemFS()
	j := openT(t, Options{Dir: "/mem", FS: fs})
	defer j.Close()
	appendN(t, j, 5)
	ff := NewFaultFS(fs)
	// Swap in a faulting file layer under the writer, then damage what was
	// acknowledged: Resume must notice and stay failed.
	j.wmu.Lock()
	j.active = &faultFile{File: j.active, fs: ff}
	j.wmu.Unlock()
	ff.FailWrites(0, 0, syscall.EIO)
	failedAppend(t, j, syscall.EIO)
	end := j.Stats().SizeOnDisk // where the acknowledged records end
	for _, f := range fs.files {
		f.data[end-3] ^= 1
	}
	if err := j.Resume(); err == nil || !errors.Is(j.Err(), ErrFailed) {
		t.Fatalf("resume over a damaged tail: %v, Err %v", err, j.Err())
	}
}

func TestFaultDuringRoll(t *testing.T) {
	// The group that would start a new segment fails while creating it:
	// the half-made file must go, and Resume must carry on in the old one.
	fs := NewFaultFS(nil)
	dir := t.TempDir()
	j := openT(t, Options{Dir: dir, FS: fs, SegmentSize: 1 << 10})
	off := func() int64 {
		j.wmu.Lock()
		defer j.wmu.Unlock()
		return j.writeOff
	}
	// Records of at most ~120 bytes cannot roll before 1 KiB - 300; the
	// big one then must.
	for off() < 1<<10-300 {
		appendN(t, j, 1)
	}
	fs.FailWrites(0, 0, syscall.EIO)
	big := Record{Type: TypeSet, Key: []byte("big"), Value: make([]byte, 300)}
	seq, err := j.Append(&big)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.WaitDurable(seq); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "create") {
		t.Fatalf("wait: %v", err)
	}
	if got := listT(t, dir); len(got) != 1 {
		t.Fatalf("a failed roll left segments %v", got)
	}
	fs.Heal()
	if err := j.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	appendN(t, j, 3)
	last := j.DurableSeq()
	j.Close()
	j = openT(t, Options{Dir: dir})
	defer j.Close()
	if got, err := readChecked(j, 1); err != nil || got != last {
		t.Fatalf("reopened: %d, %v (want %d)", got, err, last)
	}
}
