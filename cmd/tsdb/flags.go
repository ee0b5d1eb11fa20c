package main

import (
	"flag"
	"time"

	"github.com/emsdb/tsdb/internal/duration"
)

// durationFlag is a flag.Value for durations in Prometheus's syntax
// (package duration): 30d, 2w, 1h30m, 500ms. Every duration flag uses it,
// never flag.Duration, so that a flag reads the same values as the config
// file and PromQL.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return duration.String(0)
	}
	return duration.String(*f.d)
}

func (f durationFlag) Set(s string) error {
	d, err := duration.Parse(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// durationVar defines a duration flag with a default, as fs.DurationVar
// does, in Prometheus's syntax.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(durationFlag{p}, name, usage)
}
