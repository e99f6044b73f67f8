package server

// Durability in `stats` (Petrel-only fields after memcached's) and in
// /metrics. docs/metrics.md lists them.

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"petrel/internal/storage"
)

// durableStats appends the journal's fields to the general `stats`.
func (srv *Server) durableStats(emit func(name, value string)) {
	d := srv.dur
	if d == nil {
		emit("durability", DurabilityOff)
		return
	}
	st := d.j.Stats()
	emit("durability", d.mode)
	emit("journal_failed", boolDigit(st.Failed))
	emit("journal_first_seq", u64(st.FirstSeq))
	emit("journal_last_seq", u64(st.NextSeq-1))
	emit("journal_durable_seq", u64(st.DurableSeq))
	emit("journal_synced_seq", u64(st.SyncedSeq))
	emit("journal_segments", strconv.Itoa(st.Segments))
	emit("journal_bytes_on_disk", i64(st.SizeOnDisk))
	emit("journal_records", u64(st.Records))
	emit("journal_groups", u64(st.Groups))
	emit("journal_bytes_written", u64(st.Bytes))
	emit("journal_records_per_group", strconv.FormatFloat(st.RecordsPerGroup(), 'f', 2, 64))
	emit("journal_syncs", u64(st.Syncs))
	emit("journal_sync_avg_us", i64(st.AvgSync().Microseconds()))
	emit("journal_sync_max_us", u64(st.SyncMaxNanos/1000))
	emit("journal_stalls", u64(st.Stalls))
	emit("journal_pending_bytes", strconv.Itoa(st.PendingBytes))
	if st := d.storer(); st != nil {
		l := st.Lag()
		emit("storer_applied_seq", u64(l.AppliedSeq))
		emit("storer_durable_applied_seq", u64(l.DurableAppliedSeq))
		emit("storer_backlog_records", u64(l.BacklogRecords))
		emit("storer_backlog_bytes", i64(l.BacklogBytes))
		emit("storer_oldest_unapplied_ms", i64(l.OldestUnapplied.Milliseconds()))
		emit("storer_batches", u64(l.Stats.Batches))
		emit("storer_records", u64(l.Stats.Records))
		emit("storer_flushes", u64(l.Stats.Flushes))
		emit("storer_truncations", u64(l.Stats.Truncations))
		emit("storer_retries", u64(sumRetries(l.Stats.Retries)))
	}
	srv.backendStats(emit) // backend_stats.go
	emit("warmup_done", boolDigit(d.recovery.done.Load()))
	emit("warmup_records", u64(d.recovery.records.Load()))
	emit("warmup_items", u64(d.recovery.items.Load()))
	emit("warmup_bytes", u64(d.recovery.bytes.Load()))
	emit("warmup_seconds", strconv.FormatFloat(time.Duration(d.recovery.duration.Load()).Seconds(), 'f', 3, 64))
}

// storer is the storer running in this process, or nil.
func (d *durable) storer() *storage.Storer {
	if d.back == nil {
		return nil
	}
	return d.back.storer.Load()
}

func sumRetries(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// durableSettings appends the durability settings to `stats settings`.
func (srv *Server) durableSettings(emit func(name, value string)) {
	dc := srv.cfg.Durable
	emit("durability", dc.mode())
	if !dc.Enabled() {
		return
	}
	emit("data_dir", dc.DataDir)
	seg, sync := dc.JournalSegmentSize, dc.SyncInterval
	if seg == 0 {
		seg = 64 << 20 // the journal's defaults
	}
	if sync == 0 {
		sync = time.Second
	}
	emit("journal_segment_size", i64(seg))
	emit("journal_max_delay", dc.JournalMaxDelay.String())
	emit("journal_sync_interval", sync.String())
	emit("journal_retry", dc.JournalRetry.String())
	emit("accept_during_warmup", yesNo(dc.AcceptDuringWarmup))
	if d := srv.dur; d != nil && d.back != nil {
		storer := "internal"
		if d.back.external {
			storer = "external"
		}
		emit("storer", storer)
	}
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

var (
	descJFailed   = desc("petrel_journal_failed", "1 when the journal has failed (a disk error): writes get SERVER_ERROR until a restart.")
	descJSeq      = desc("petrel_journal_sequence", "Journal sequences: last appended, durable (acknowledged), synced (fdatasync'ed), first kept.", "kind")
	descJSegments = desc("petrel_journal_segments", "Journal segment files.")
	descJDisk     = desc("petrel_journal_disk_bytes", "Bytes of journal segment files on disk.")
	descJRecords  = desc("petrel_journal_records_total", "Journal records acknowledged since start.")
	descJGroups   = desc("petrel_journal_groups_total", "Journal group commits (one write, one fdatasync in sync mode) since start.")
	descJBytes    = desc("petrel_journal_written_bytes_total", "Bytes written to the journal since start.")
	descJSyncs    = desc("petrel_journal_syncs_total", "Journal fdatasync calls since start.")
	descJSyncSecs = desc("petrel_journal_sync_seconds_total", "Time spent in journal fdatasync; divide by petrel_journal_syncs_total for the mean.")
	descJSyncMax  = desc("petrel_journal_sync_max_seconds", "Longest journal fdatasync since start.")
	descJStalls   = desc("petrel_journal_stalls_total", "Appends that waited because too many bytes were not yet durable (back-pressure).")
	descJPending  = desc("petrel_journal_pending_bytes", "Bytes appended to the journal and not yet durable.")
	descSApplied  = desc("petrel_storer_applied_seq", "Journal sequence the storage backend has applied, and made durable.", "kind")
	descSBacklog  = desc("petrel_storer_backlog_records", "Acknowledged journal records the storage backend has not applied yet.")
	descSBackB    = desc("petrel_storer_backlog_bytes", "Estimated bytes of the storer's backlog.")
	descSAge      = desc("petrel_storer_lag_seconds", "Age of the oldest acknowledged write the storage backend has not applied.")
	descSRecords  = desc("petrel_storer_records_total", "Records the storer applied.")
	descSRetries  = desc("petrel_storer_retries_total", "Failed backend applies, retried, by error kind.", "kind")
	descWarmDone  = desc("petrel_warmup_done", "1 once the memory tier is loaded after a start.")
	descWarmItems = desc("petrel_warmup_items", "Items loaded into memory at start.")
	descWarmRecs  = desc("petrel_warmup_records", "Journal records replayed at start.")
)

// durableCollector exports the journal at scrape time.
type durableCollector struct{ srv *Server }

func (dc *durableCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(dc, ch)
}

func (dc *durableCollector) Collect(ch chan<- prometheus.Metric) {
	d := dc.srv.dur
	if d == nil {
		return
	}
	counter := func(de *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(de, prometheus.CounterValue, v, lv...)
	}
	gauge := func(de *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(de, prometheus.GaugeValue, v, lv...)
	}
	st := d.j.Stats()
	failed := 0.0
	if st.Failed {
		failed = 1
	}
	gauge(descJFailed, failed)
	gauge(descJSeq, float64(st.NextSeq-1), "last")
	gauge(descJSeq, float64(st.DurableSeq), "durable")
	gauge(descJSeq, float64(st.SyncedSeq), "synced")
	gauge(descJSeq, float64(st.FirstSeq), "first")
	gauge(descJSegments, float64(st.Segments))
	gauge(descJDisk, float64(st.SizeOnDisk))
	counter(descJRecords, float64(st.Records))
	counter(descJGroups, float64(st.Groups))
	counter(descJBytes, float64(st.Bytes))
	counter(descJSyncs, float64(st.Syncs))
	counter(descJSyncSecs, float64(st.SyncNanos)/1e9)
	gauge(descJSyncMax, float64(st.SyncMaxNanos)/1e9)
	counter(descJStalls, float64(st.Stalls))
	gauge(descJPending, float64(st.PendingBytes))
	if sr := d.storer(); sr != nil {
		l := sr.Lag()
		gauge(descSApplied, float64(l.AppliedSeq), "applied")
		gauge(descSApplied, float64(l.DurableAppliedSeq), "durable")
		gauge(descSBacklog, float64(l.BacklogRecords))
		gauge(descSBackB, float64(l.BacklogBytes))
		gauge(descSAge, l.OldestUnapplied.Seconds())
		counter(descSRecords, float64(l.Stats.Records))
		for kind, n := range l.Stats.Retries {
			counter(descSRetries, float64(n), kind)
		}
	}
	done := 0.0
	if d.recovery.done.Load() {
		done = 1
	}
	gauge(descWarmDone, done)
	gauge(descWarmItems, float64(d.recovery.items.Load()))
	gauge(descWarmRecs, float64(d.recovery.records.Load()))
}
