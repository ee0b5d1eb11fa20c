// Package jsonl imports VictoriaMetrics' JSON-lines format, what GET
// /api/v1/export writes and POST /api/v1/import takes back: one series per
// line, its float samples and its native histogram samples.
//
//	{"metric":{"__name__":"up","job":"a"},"values":[1,"StaleNaN"],"timestamps":[1000,2000]}
//	{"metric":{"__name__":"rq"},"values":[],"timestamps":[],
//	 "histograms":[{"schema":0,"zero_threshold":0,"zero_count":0,"count":3,"sum":4.5,
//	   "positive_spans":[{"offset":1,"length":2}],"positive_buckets":[1,2],
//	   "counter_reset_hint":"unknown"}],"histogram_timestamps":[1000]}
//
// Values are JSON numbers or the strings "NaN", "+Inf", "-Inf" and
// "StaleNaN" (Prometheus' stale marker, kept bit-exactly); the histogram
// object's floats are written the same way, and its bucket counts are
// absolute. web's export documents every field. Unknown fields are errors,
// so that a misspelt one does not silently lose samples.
//
// A body is decoded whole into one storage.Batch before anything is
// written: a malformed line is an error naming its line number, and
// nothing of the body is stored.
//
//	h := jsonl.New(db, nil)
//	// route POST /api/v1/import to h.Serve
package jsonl
