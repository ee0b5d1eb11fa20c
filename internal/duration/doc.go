// Package duration is tsdb's one duration syntax, Prometheus's
// (model.ParseDuration): integers with units from largest to smallest,
// each unit at most once, with y = 365d, w = 7d, d = 24h, then h, m, s
// and ms. 30d, 2w, 1h30m and 500ms are durations; "0" needs no unit.
// Go's 1.5h and bare numbers are not.
//
// Flags (cmd/tsdb), every duration in the config file, rule files, rule
// templates and PromQL duration literals parse through Parse, so one
// value means the same everywhere.
//
//	type Config struct {
//		Timeout duration.Duration `yaml:"timeout"` // timeout: 3d
//	}
//	d, err := duration.Parse("1h30m")
package duration
