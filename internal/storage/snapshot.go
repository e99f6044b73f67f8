package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"petrel/internal/journal"
)

// A snapshot is a directory, built off the serving path as MemoryDB builds
// its snapshots, and verified before it is trusted:
//
//	SNAP/pebble/         a Pebble checkpoint (sstables hard-linked where possible)
//	SNAP/journal/        the journal segments from the one holding applied+1 on
//	SNAP/manifest.json   format, applied sequence, item count, journal range,
//	                     and the SHA-256 of every file, itself checksummed
//
// The checkpoint holds every write up to AppliedSeq; the journal segments
// continue from there, so a restored data directory replays them on start
// and its journal goes on numbering after them.

// SnapshotFormat names the manifest format.
const SnapshotFormat = "petrel-snapshot/1"

const manifestName = "manifest.json"

// SnapshotManifest describes a snapshot.
type SnapshotManifest struct {
	Format       string         `json:"format"`
	Created      time.Time      `json:"created"`
	AppliedSeq   uint64         `json:"applied_seq"`   // the checkpoint holds every write up to it
	Items        int64          `json:"items"`         // live items in the checkpoint, expiry ignored
	JournalFirst uint64         `json:"journal_first"` // first record of journal/ (0: none)
	JournalLast  uint64         `json:"journal_last"`  // last complete record of journal/
	Files        []SnapshotFile `json:"files"`
	// Checksum is the SHA-256 of this manifest's JSON with Checksum empty.
	Checksum string `json:"checksum"`
}

// SnapshotFile is one file of a snapshot.
type SnapshotFile struct {
	Path   string `json:"path"` // relative, slash-separated
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Logf receives progress lines.
type Logf func(format string, args ...any)

// CreateSnapshot writes a snapshot of dataDir to out, which must not exist
// or be empty. It takes the storer lock, so it refuses to run beside a
// storer (a server with the embedded storer, or `petrel storer`). When no
// server holds the journal either, it first applies the journal, so the
// checkpoint is fresh and the journal part short.
//
// Asked to stop (ctx) while the store is stuck on its disk, it returns an
// ErrStoreStuck error within StoreStopTimeout or two, with the store left
// open: the caller should exit.
func CreateSnapshot(ctx context.Context, dataDir, out string, logf Logf) (*SnapshotManifest, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := emptyOrMissing(out); err != nil {
		return nil, fmt.Errorf("snapshot: output %w", err)
	}
	lock, err := LockStorer(dataDir)
	if err != nil {
		// No server command or endpoint takes snapshots: the lock's holder
		// must stop. A server whose storer runs in a separate process goes
		// on serving without it; its journal keeps what is not applied.
		return nil, fmt.Errorf("snapshot: %w: a storer is running on %s (a server's own, or `petrel storer`); "+
			"stop it and run this again: stop the server, and the snapshot applies its journal first; "+
			"or, if the server runs beside a separate `petrel storer`, stop only that storer, "+
			"and the snapshot carries the journal records it has not applied", err, dataDir)
	}
	defer lock.Unlock()
	if err := CheckRestore(dataDir); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	p, err := OpenPebble(PebbleDir(dataDir), PebbleOptions{ErrorLogf: logf})
	if err != nil {
		return nil, err
	}
	if jl, err := LockJournal(dataDir); err == nil {
		err = catchUpDir(ctx, dataDir, p, logf)
		jl.Unlock()
		if errors.Is(err, ErrStoreStuck) {
			return nil, err // closing would wait behind the stuck apply
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("snapshot: apply the journal of %s first: %w", dataDir, err), CloseStore(p))
		}
	} else {
		logf("journal in use by a server: the snapshot carries its unapplied records")
	}
	m, err := WriteSnapshot(ctx, p, JournalDir(dataDir), out, logf)
	if cerr := CloseStore(p); cerr != nil {
		if err == nil && errors.Is(cerr, ErrStoreStuck) {
			// The snapshot is whole, but the process must not wait on.
			return m, cerr
		}
		logf("closing the store: %v", cerr)
	}
	return m, err
}

// WriteSnapshot writes a snapshot of an open store and its journal
// directory to out (missing or empty), while both stay in use: Pebble's
// checkpoint is online, and journal segments are only appended to. A
// server can call it to snapshot itself without stopping. If it fails, or
// ctx is done, it removes what it wrote (snapshot_out.go).
func WriteSnapshot(ctx context.Context, p *Pebble, journalDir, out string, logf Logf) (*SnapshotManifest, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	o, err := makeSnapshotOut(out)
	if err != nil {
		return nil, err
	}
	m, err := writeSnapshot(ctx, p, journalDir, out, logf)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, o.abandon())
	}
	return m, nil
}

func writeSnapshot(ctx context.Context, p *Pebble, journalDir, out string, logf Logf) (*SnapshotManifest, error) {
	logf("checkpointing the store")
	outPebble := filepath.Join(out, "pebble")
	seq, items, err := p.Checkpoint(outPebble)
	if err != nil {
		return nil, fmt.Errorf("snapshot: checkpoint the store into %s: %w", outPebble, err)
	}
	m := &SnapshotManifest{Format: SnapshotFormat, Created: time.Now().UTC(), AppliedSeq: seq, Items: items}
	outJournal := filepath.Join(out, "journal")
	if err := copyJournalFrom(ctx, journalDir, outJournal, seq+1, logf); err != nil {
		return nil, fmt.Errorf("snapshot: copy the journal %s to %s: %w", journalDir, outJournal, err)
	}
	if m.JournalFirst, m.JournalLast, err = checkJournalCopy(ctx, outJournal, seq); err != nil {
		return nil, fmt.Errorf("snapshot: the copied journal %s: %w", outJournal, err)
	}
	if m.Files, err = hashTree(ctx, out, logf); err != nil {
		return nil, err
	}
	if err := writeManifest(out, m); err != nil {
		return nil, err
	}
	logf("snapshot %s: applied sequence %d, %d items, journal %d..%d, %d files",
		out, m.AppliedSeq, m.Items, m.JournalFirst, m.JournalLast, len(m.Files))
	return m, nil
}

// catchUpDir applies dataDir's journal to p, up to its end. The caller
// holds both locks.
func catchUpDir(ctx context.Context, dataDir string, p *Pebble, logf Logf) error {
	if _, err := os.Stat(JournalDir(dataDir)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	j, err := journal.Open(journal.Options{Dir: JournalDir(dataDir), Logf: logf})
	if err != nil {
		return err
	}
	defer j.Close()
	return CatchUp(ctx, j, p, StorerOptions{CPUShare: 1, Logf: logf}, logf)
}

// CatchUp applies j to b up to j's current end, then flushes; progress
// goes to logf about once a second. Once ctx is done it waits at most
// StoreStopTimeout for the storer to stop, then returns an ErrStoreStuck
// error: b is then stuck (on a full disk, Pebble stalls an Apply until a
// flush succeeds) and must be left open.
func CatchUp(ctx context.Context, j journal.Journal, b Backend, opts StorerOptions, logf Logf) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	target := j.DurableSeq()
	applied, err := b.AppliedSeq(ctx)
	if err != nil {
		return err
	}
	if applied >= target {
		return nil
	}
	logf("applying journal records %d..%d", applied+1, target)
	start, last := time.Now(), time.Now()
	opts.Progress = func(l Lag) {
		if time.Since(last) >= time.Second {
			last = time.Now()
			done := l.AppliedSeq - applied
			rate := float64(done) / time.Since(start).Seconds()
			logf("applied %d/%d records (%.0f/s), backlog %d", done, target-applied, rate, l.BacklogRecords)
		}
	}
	s := NewStorer(j, b, opts)
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	werr := s.WaitApplied(ctx, target)
	cancel()
	rerr := WaitStorerStopped(errc)
	if errors.Is(rerr, ErrStoreStuck) {
		return rerr
	}
	if werr != nil {
		return fmt.Errorf("storage: catch up: %w", errors.Join(werr, rerr))
	}
	logf("applied up to %d in %v", target, time.Since(start).Round(time.Millisecond))
	return rerr
}

// copyJournalFrom copies the segments holding records from seq on.
func copyJournalFrom(ctx context.Context, src, dst string, seq uint64, logf Logf) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	segs, err := listSegmentFiles(src)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(segs) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	from := 0
	for i, s := range segs {
		if s.first <= seq {
			from = i
		}
	}
	for _, s := range segs[from:] {
		if _, err := copyFile(ctx, s.path, filepath.Join(dst, filepath.Base(s.path)), logf, nil); err != nil {
			return err
		}
	}
	return syncDir(dst)
}

// checkJournalCopy reads every record of a snapshot's journal and checks
// that it continues from applied: its first record is at most applied+1.
// A torn last record (copied mid-write) is allowed; journal recovery cuts
// it on restore.
func checkJournalCopy(ctx context.Context, dir string, applied uint64) (first, last uint64, err error) {
	segs, err := listSegmentFiles(dir)
	if err != nil || len(segs) == 0 {
		return 0, 0, err
	}
	first = segs[0].first
	if first > applied+1 {
		return 0, 0, fmt.Errorf("journal starts at %d, after the checkpoint's %d: records are missing", first, applied)
	}
	c := &cursor{dir: dir, seq: first, tolerateTail: true}
	defer c.close()
	var r journal.Record
	last = first - 1
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		err := c.read(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		last = r.Seq
	}
	if last < applied {
		// The writer cannot be behind what was applied from it.
		return 0, 0, fmt.Errorf("journal ends at %d, before the checkpoint's %d", last, applied)
	}
	return first, last, nil
}

// VerifySnapshot checks a snapshot end to end without a server: the
// manifest's own checksum, every file's size and SHA-256 (and that no
// file is missing or extra), then it opens the checkpoint read-only,
// checks its applied sequence and counts its items, and reads every
// journal record (CRC, sequence order, continuity with the checkpoint).
func VerifySnapshot(ctx context.Context, snapDir string, logf Logf) (*SnapshotManifest, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	m, err := readManifest(snapDir)
	if err != nil {
		return nil, err
	}
	files, err := hashTree(ctx, snapDir, logf)
	if err != nil {
		return nil, err
	}
	want := map[string]SnapshotFile{}
	for _, f := range m.Files {
		want[f.Path] = f
	}
	for _, f := range files {
		w, ok := want[f.Path]
		switch {
		case !ok:
			return nil, fmt.Errorf("snapshot %s: file %s is not in the manifest", snapDir, f.Path)
		case w.Size != f.Size || w.SHA256 != f.SHA256:
			return nil, fmt.Errorf("snapshot %s: %s: checksum mismatch (size %d sha256 %s, manifest says %d %s)",
				snapDir, f.Path, f.Size, f.SHA256, w.Size, w.SHA256)
		}
		delete(want, f.Path)
	}
	for path := range want {
		return nil, fmt.Errorf("snapshot %s: file %s is missing", snapDir, path)
	}
	logf("checksums: %d files match", len(files))

	// Open a hard-linked (or copied) twin, so that Pebble's LOCK file and
	// anything else opening writes never touch the snapshot itself.
	twin, err := os.MkdirTemp(snapDir, ".verify-")
	if err != nil {
		twin, err = os.MkdirTemp("", "petrel-verify-")
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot verify: %w", err)
	}
	defer os.RemoveAll(twin)
	if err := linkOrCopyTree(ctx, filepath.Join(snapDir, "pebble"), twin); err != nil {
		return nil, fmt.Errorf("snapshot %s: link the checkpoint into %s to open it: %w", snapDir, twin, err)
	}
	p, err := OpenPebble(twin, PebbleOptions{ReadOnly: true, CacheBytes: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: open the checkpoint: %w", snapDir, err)
	}
	defer p.Close()
	applied, _ := p.AppliedSeq(ctx)
	if applied != m.AppliedSeq {
		return nil, fmt.Errorf("snapshot %s: the checkpoint holds applied sequence %d, the manifest says %d", snapDir, applied, m.AppliedSeq)
	}
	var items int64
	if err := p.Scan(ctx, 0, func(Item) error {
		if items++; items%1_000_000 == 0 {
			logf("counted %d items", items)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("snapshot %s: read the checkpoint: %w", snapDir, err)
	}
	if items != m.Items {
		return nil, fmt.Errorf("snapshot %s: the checkpoint holds %d items, the manifest says %d", snapDir, items, m.Items)
	}
	logf("checkpoint: applied sequence %d, %d items", applied, items)
	first, last, err := checkJournalCopy(ctx, filepath.Join(snapDir, "journal"), m.AppliedSeq)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", snapDir, err)
	}
	if first != m.JournalFirst || last != m.JournalLast {
		return nil, fmt.Errorf("snapshot %s: journal holds %d..%d, the manifest says %d..%d", snapDir, first, last, m.JournalFirst, m.JournalLast)
	}
	logf("journal: records %d..%d, continuous with the checkpoint", first, last)
	return m, nil
}

// RestoreSnapshot verifies snapDir and makes dataDir hold it. dataDir must
// be empty or missing unless force is set; then its storage and journal
// are replaced (both locks are taken first, so no process is using it).
// The copy is staged inside dataDir and swapped in once complete, under a
// marker that CheckRestore reports if the restore dies (restore_marker.go):
// a restore that fails leaves either the old data as it was or a
// directory that nothing will start on.
func RestoreSnapshot(ctx context.Context, snapDir, dataDir string, force bool, logf Logf) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	m, err := VerifySnapshot(ctx, snapDir, logf)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := emptyOrMissing(dataDir); err != nil && !force {
		return fmt.Errorf("restore: %w (use --force to replace its contents)", err)
	}
	jl, err := LockJournal(dataDir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer jl.Unlock()
	sl, err := LockStorer(dataDir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer sl.Unlock()
	if err := RemoveStorerProgress(dataDir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	snapAbs, err := filepath.Abs(snapDir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	earlier := CheckRestore(dataDir) != nil
	if err := writeRestoreMarker(dataDir, snapAbs); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Leftovers of a restore that died: its copy, and old data it had
	// moved aside, which --force gives up.
	staging := filepath.Join(dataDir, restoreStaging)
	if err := errors.Join(os.RemoveAll(staging), os.RemoveAll(filepath.Join(dataDir, restoreOld))); err != nil {
		return fmt.Errorf("restore: %w%s", err, abandonRestore(dataDir, earlier))
	}
	if err := stageSnapshot(ctx, snapDir, staging, m, logf); err != nil {
		state := abandonRestore(dataDir, earlier)
		if errors.Is(err, syscall.ENOSPC) && force {
			state += " (the old data stays until the new copy is complete, so the disk must hold both: " +
				"if it cannot, move the old data aside and restore into an empty directory)"
		}
		return fmt.Errorf("restore: %w%s", err, state)
	}
	marked := &restoreIncompleteError{dataDir: dataDir, snap: snapAbs}
	if err := swapIn(dataDir, staging); err != nil {
		return fmt.Errorf("restore: %w; %w", err, marked)
	}
	// The new data is in place and synced: now the old can go, and then
	// the marker.
	if err := errors.Join(os.RemoveAll(filepath.Join(dataDir, restoreOld)), os.RemoveAll(staging)); err != nil {
		return fmt.Errorf("restore: removing the old data: %w; %w", err, marked)
	}
	if err := removeRestoreMarker(dataDir); err != nil {
		return fmt.Errorf("restore: %w; %w", err, marked)
	}
	logf("restored %s into %s: applied sequence %d, %d items, journal to %d", snapDir, dataDir, m.AppliedSeq, m.Items, m.JournalLast)
	return nil
}

func emptyOrMissing(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if n := e.Name(); n != journalLock && n != storerLock {
			return fmt.Errorf("%s is not empty", dir)
		}
	}
	return nil
}

func writeManifest(dir string, m *SnapshotManifest) error {
	m.Checksum = ""
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	m.Checksum = hex.EncodeToString(sum[:])
	body, err = json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, manifestName), append(body, '\n')); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return syncDir(dir)
}

func readManifest(dir string) (*SnapshotManifest, error) {
	body, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var m SnapshotManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("snapshot %s: manifest: %w", dir, err)
	}
	if m.Format != SnapshotFormat {
		return nil, fmt.Errorf("snapshot %s: format %q, this build reads %q", dir, m.Format, SnapshotFormat)
	}
	got := m.Checksum
	check := m
	check.Checksum = ""
	again, _ := json.MarshalIndent(&check, "", "  ")
	sum := sha256.Sum256(again)
	if hex.EncodeToString(sum[:]) != got {
		return nil, fmt.Errorf("snapshot %s: manifest checksum mismatch: the manifest was altered", dir)
	}
	return &m, nil
}

// copyChunk is how much copyFile and hashFile move between looks at ctx:
// a signal is heeded within a few MiB, not at the end of a large sstable.
const copyChunk = 4 << 20

// hashTree hashes every regular file under root except the manifest and
// verification twins, in path order.
func hashTree(ctx context.Context, root string, logf Logf) ([]SnapshotFile, error) {
	var files []SnapshotFile
	var total int64
	next := int64(256 << 20)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if len(d.Name()) > 8 && d.Name()[:8] == ".verify-" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == manifestName {
			return nil
		}
		n, sum, err := hashFile(ctx, path)
		if err != nil {
			return err
		}
		files = append(files, SnapshotFile{Path: filepath.ToSlash(rel), Size: n, SHA256: sum})
		if total += n; total >= next {
			next += 256 << 20
			logf("hashed %d MiB", total>>20)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: hash %s: %w", root, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func hashFile(ctx context.Context, path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := copyCtx(ctx, h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// copyCtx is io.Copy in copyChunk pieces, stopping once ctx is done. Each
// piece is an io.CopyN, so that file to file it still goes through
// copy_file_range.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		c, err := io.CopyN(w, r, copyChunk)
		n += c
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func linkOrCopyTree(ctx context.Context, src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if e.IsDir() {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			if err := linkOrCopyTree(ctx, s, d); err != nil {
				return err
			}
			continue
		}
		if os.Link(s, d) != nil {
			if _, err := copyFile(ctx, s, d, nil, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyFile copies src to a new file dst and syncs it; with h, it hashes
// what it copies as well.
func copyFile(ctx context.Context, src, dst string, logf Logf, h hash.Hash) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	var w io.Writer = out
	if h != nil {
		w = io.MultiWriter(out, h)
	}
	n, err := copyCtx(ctx, w, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copy %s: %w", src, err)
	}
	if logf != nil && n >= 64<<20 {
		logf("copied %s (%d MiB)", filepath.Base(src), n>>20)
	}
	return n, nil
}

func writeFileSync(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
