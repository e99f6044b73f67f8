package main

import (
	"path/filepath"
	"strings"
	"testing"

	"petrel/internal/journal"
	"petrel/internal/storage"
)

// TestStorerAndSnapshotCommands drives the subcommands over a data
// directory whose journal nothing has applied yet.
func TestStorerAndSnapshotCommands(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(journal.Options{Dir: storage.JournalDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		r := journal.Record{Type: journal.TypeSet, Key: []byte{'k', byte(i)}, Value: []byte("v")}
		if _, err := j.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	snap, restored := filepath.Join(t.TempDir(), "snap"), filepath.Join(t.TempDir(), "data")
	f := func(run func([]string) error, args string, wantErr string) {
		t.Helper()
		err := run(append(strings.Fields(args), "-q"))
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: %v, want error %q", args, err, wantErr)
		}
	}
	f(storerMain, "--data-dir "+dir, "")
	f(snapshotMain, "create --data-dir "+dir+" --out "+snap, "")
	f(snapshotMain, "verify "+snap, "")
	f(snapshotMain, "restore "+snap+" --data-dir "+restored, "")
	f(snapshotMain, "restore --data-dir "+restored+" "+snap, "not empty")
	f(snapshotMain, "restore "+snap+" --data-dir "+restored+" --force", "")
	f(snapshotMain, "verify", "needs SNAPDIR")
	f(snapshotMain, "bogus", "unknown snapshot command")
	p, err := storage.OpenPebble(storage.PebbleDir(restored), storage.PebbleOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if items, _ := p.LiveSize(); items != 100 {
		t.Errorf("restored store holds %d items, want 100", items)
	}
}

// TestStorerFollowPublishesProgress: following a server's journal, the
// storer publishes how far it has applied, which the server's
// --backlog-limit measures from (it used to go unenforced with the storer
// in another process).
func TestStorerFollowPublishesProgress(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(journal.Options{Dir: storage.JournalDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := range 100 {
		r := journal.Record{Type: journal.TypeSet, Key: []byte{'k', byte(i)}, Value: []byte("v")}
		if _, err := j.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.WaitDurable(100); err != nil {
		t.Fatal(err)
	}
	if err := storerMain([]string{"--data-dir", dir, "--follow", "--once", "--poll", "5ms", "-q"}); err != nil {
		t.Fatal(err)
	}
	p, ok, err := storage.ReadStorerProgress(dir)
	if err != nil || !ok || p.Applied != 100 {
		t.Fatalf("published progress %+v, %v, %v; want applied 100", p, ok, err)
	}
	if n := j.BytesAfter(p.Pos); n != 0 {
		t.Errorf("caught up, yet %d bytes after the published position %+v", n, p.Pos)
	}
}
