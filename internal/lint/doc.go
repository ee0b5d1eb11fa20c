// Package lint holds no code: its test guards the layering of the module,
// as Pebble's internal/lint does, so that `go test ./...` fails when a
// change crosses a layer. Each failure names the import that broke a rule
// and how to fix it.
//
// The layers, bottom up: storage/... (the only user of Pebble); ingest/...
// and query/... on top of storage, side by side; alerting/... on top of
// query; cmd/tsdb wires them together. HTTP (fasthttp) belongs in web/, in
// ingest's listeners and in internal/.
//
//	go test -tags pebblegozstd ./internal/lint/
//
// staticcheck runs from `make check` (`go tool staticcheck`), not from here.
package lint
