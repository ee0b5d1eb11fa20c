// Package relabel applies per-source labels and Prometheus relabeling
// rules (keep, drop, replace, labeldrop, labelkeep, …) to series at
// ingest, in front of storage.
package relabel

import (
	"context"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/emsdb/tsdb/storage"
)

// Rules is one source's configuration.
type Rules struct {
	// Labels are set on every series of the source (e.g. source: snmp).
	Labels map[string]string `yaml:"labels"`
	// Relabel are Prometheus relabel_configs, applied after Labels.
	Relabel []*relabel.Config `yaml:"relabel_configs"`
}

// Validate checks the rules.
func (r *Rules) Validate() error {
	for i, c := range r.Relabel {
		c.NameValidationScheme = model.UTF8Validation
		if err := c.Validate(model.UTF8Validation); err != nil {
			return fmt.Errorf("relabel_configs[%d]: %w", i, err)
		}
	}
	for k := range r.Labels {
		if k == "" {
			return fmt.Errorf("labels: empty label name")
		}
	}
	return nil
}

// Wrap returns w with r applied in front; w itself when r is empty.
func Wrap(w storage.Writer, r *Rules) storage.Writer {
	if r == nil || (len(r.Labels) == 0 && len(r.Relabel) == 0) {
		return w
	}
	return &writer{w: w, r: r}
}

type writer struct {
	w storage.Writer
	r *Rules
}

// Write relabels every series of b; dropped series are not written.
// Histograms, exemplars and metadata travel with them unchanged.
func (x *writer) Write(ctx context.Context, tenant string, b *storage.Batch) error {
	out := storage.Batch{Series: make([]storage.SeriesSamples, 0, len(b.Series)), Metadata: b.Metadata}
	lb := labels.NewBuilder(labels.EmptyLabels())
	for i := range b.Series {
		ls, err := b.LabelsOf(i)
		if err != nil {
			return fmt.Errorf("%w: series %d: %v", storage.ErrInvalidSeries, i, err)
		}
		lb.Reset(ls)
		for k, v := range x.r.Labels {
			lb.Set(k, v)
		}
		if !relabel.ProcessBuilder(lb, x.r.Relabel...) {
			continue
		}
		ss := b.Series[i]
		ss.Labels, ss.Key = lb.Labels(), nil
		out.Series = append(out.Series, ss)
	}
	if len(out.Series) == 0 && len(out.Metadata) == 0 {
		return nil
	}
	return x.w.Write(ctx, tenant, &out)
}
