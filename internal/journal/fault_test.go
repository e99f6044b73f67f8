package journal

import (
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
		fs.Heal()
		err := j.Resume()
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
	for _, f := range fs.files {
		f.data[len(f.data)-3] ^= 1
	}
	if err := j.Resume(); err == nil || !errors.Is(j.Err(), ErrFailed) {
		t.Fatalf("resume over a damaged tail: %v, Err %v", err, j.Err())
	}
}
