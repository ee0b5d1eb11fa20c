// Package remotewrite receives Prometheus remote write, versions 1.0
// (prometheus.WriteRequest) and 2.0 (io.prometheus.write.v2.Request with
// its symbols table), and hands the samples to a storage.Writer.
//
// The decoder reads protobuf wire format with protowire, straight into a
// storage.Batch, without generated message structs or copies of the body;
// it rejects anything malformed with ErrMalformed. The handler answers as
// the remote-write spec says: 204 once the samples are durable (with the
// X-Prometheus-Remote-Write-*-Written headers for 2.0), 400 for a
// malformed or invalid request, which stores nothing (a series without a
// metric name, a body of the other version than the one declared), 415
// for an unknown content type or encoding, 413 for an oversized body, and
// 5xx only when a retry can help.
//
//	h := remotewrite.New(db, nil)
//	// route POST /api/v1/write to h.Serve
package remotewrite
