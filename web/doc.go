// Package web is the one home of tsdb's HTTP API.
//
// Every endpoint is one row of the route table (routes.go): its method,
// its path pattern, the role it needs when authentication is on, whether
// it may be shed under memory pressure, and its handler. Dispatch,
// authorisation, load shedding and the per-handler request metrics all
// come from that table, so an endpoint cannot be served without a role.
//
// Handlers of the JSON API return (data, error). One writer (respond.go)
// wraps data in Prometheus's success envelope, and one mapper (errors.go)
// turns every error into its HTTP status and error envelope:
//
//	{"status":"success","data":…,"warnings":[…]}
//	{"status":"error","errorType":"bad_data","error":"…"}
//
// Ingest, metrics, the console and profiles keep their own fasthttp
// handlers; they are rows of the same table.
//
// Before any handler, the server (server.go, conns.go) bounds what an
// unauthenticated client can hold: connections per address, the time to
// send a header, idle keep-alive under pressure, and a reserve of
// connections for probes and authenticated requests.
//
// Example:
//
//	srv, err := web.New(web.Deps{Reader: db, Engine: eng, …})
//	fasthttpServer.Handler = srv.Handler
package web
