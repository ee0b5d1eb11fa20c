// Package metering keeps billing-grade usage per tenant and UTC day: the
// samples ingested by protocol, active series and series-hours, bytes
// stored by tier, queries and samples scanned, rule evaluations, alerts
// sent and notifications delivered. It answers the usage report
// (/api/v1/usage) and exposes the figures as tsdb_usage_* metrics.
//
// The counters live in storage (storage.DB's usage counters, see
// storage/usage.go), which makes them durable and exact across crashes:
//
//   - samples ingested are counted by storage itself, in the WAL record
//     that stores them; ingest only tags its writes with the protocol
//     (Tag). An acknowledged write is counted exactly once; a write that
//     failed before the log took it is not counted.
//   - everything else is counted here in memory (Add, and the samplers
//     of Run) and recorded into storage every FlushInterval (10 s) and at
//     shutdown; a crash (kill -9) loses at most the last interval of
//     these, never counts them twice.
//
// A Meter is wired by cmd/tsdb:
//
//	m := metering.New(metering.Options{Store: db, ActiveSeries: ..., StoredBytes: db.StoredBytes})
//	go m.Run(ctx)                      // flushes and samples until ctx is done, then flushes once more
//	rw := metering.Tag("remote_write", w) // writes through rw count as remote_write
//	eng := query.NewEngine(m.Reader(db), nil) // samples scanned, per tenant
//	m.Add("acme", metering.Queries, 1)
//	rep, err := m.Report(ctx, from, to, "acme")
package metering
