package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/storage"
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

// tiersFlag is --retention.tiers: "raw:30d,5m:1y,1h:5y", resolution:retention
// pairs finest first; "raw" names the raw samples' retention.
type tiersFlag struct {
	raw    time.Duration
	hasRaw bool
	tiers  []storage.Tier
	text   string
}

func (f *tiersFlag) String() string { return f.text }

func (f *tiersFlag) Set(s string) error {
	*f = tiersFlag{text: s}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, keep, ok := strings.Cut(part, ":")
		if !ok {
			return fmt.Errorf("%q: want resolution:retention, e.g. 5m:1y", part)
		}
		d, err := duration.Parse(keep)
		if err != nil {
			return fmt.Errorf("%q: retention: %w", part, err)
		}
		if name == "raw" {
			f.raw, f.hasRaw = d, true
			continue
		}
		res, err := duration.Parse(name)
		if err != nil {
			return fmt.Errorf("%q: resolution: %w", part, err)
		}
		f.tiers = append(f.tiers, storage.Tier{Resolution: res, Retention: d})
	}
	o := storage.Options{Tiers: f.tiers}
	return o.Validate()
}
