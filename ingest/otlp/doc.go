// Package otlp takes OpenTelemetry metrics over OTLP/HTTP: POST
// /api/v1/otlp/v1/metrics with an ExportMetricsServiceRequest as protobuf
// or JSON, optionally gzipped. It decodes with the OpenTelemetry
// collector's pdata, translates as Prometheus 3 does (metric and label
// names with unit and type suffixes, job and instance from the service
// attributes, target_info, promoted resource attributes, classic or
// custom-bucket histograms, exponential histograms as native histograms,
// summaries, exemplars and metadata) and hands one batch to a
// storage.Writer.
//
// Points that cannot be taken (delta temporality, an exponential scale
// below -4, a histogram that does not validate, names that cannot be
// translated) are left out and reported in the response's partial_success
// with a message naming their metric; the rest is stored. A body that does
// not decode is a 400 that stores nothing.
//
//	h := otlp.New(db, &otlp.Options{Config: otlp.DefaultConfig()})
//	router.POST("/api/v1/otlp/v1/metrics", h.Serve)
package otlp
