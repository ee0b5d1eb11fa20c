// Package api serves the Prometheus-compatible HTTP API over storage with
// fasthttp. Each endpoint family has its own file; errors.go is the one
// place where errors become HTTP statuses and Prometheus' JSON error
// envelope.
//
//	a := api.New(db, db, &api.Options{SnapshotDir: "data/snapshots"})
//	// route GET /api/v1/export to a.Export, and so on.
package api
