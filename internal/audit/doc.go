// Package audit keeps the audit log: who changed what through the API,
// when, from where, per tenant, durably.
//
// The web layer records one Entry after each successful change (an
// incident acknowledged, a maintenance window changed, series deleted, the
// configuration reloaded); GET /api/v1/audit reads them back, newest
// first, filtered by Query.
//
// Entries are stored in the database's small-document store (the same
// PutKV/ListKV that keeps incidents and rule groups) in pages of PageSize
// entries per tenant, under audit/<tenant>/<page number, 12 digits>. An
// append rewrites the tenant's newest page; retention deletes whole pages,
// oldest first, once the tenant keeps MaxEntries without them or their
// newest entry is older than MaxAge. Only each tenant's newest page and a
// small index stay in memory; a query reads older pages as it needs them.
//
//	l, _ := audit.Open(db, nil)
//	_ = l.Record(audit.Entry{Tenant: "default", User: "alice", Action: "incident.ack",
//		Kind: "incident", Object: "INC-000012", Summary: "INC-000012 acknowledged"})
//	newest, _ := l.Query("default", audit.Query{Limit: 10})
package audit
