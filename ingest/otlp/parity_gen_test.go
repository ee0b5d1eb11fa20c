//go:build promparity

package otlp

// The generator of testdata/parity: Prometheus' own OTLP converter run on
// the parity requests with each config. It is the only code that imports
// Prometheus' storage packages, behind a build tag so that the module does
// not need them (and their cloud SDKs) otherwise. Regenerate, after a
// change of parityRequests or parityConfigs or to follow a new Prometheus:
//
//	go test -mod=mod -tags promparity -run TestWriteParityGolden ./ingest/otlp/
//
// (-mod=mod lets go fetch the modules Prometheus' converter needs; do not
// commit the go.mod and go.sum changes it makes.)

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	prw "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/emsdb/tsdb/storage"
)

func TestWriteParityGolden(t *testing.T) {
	require.NoError(t, os.MkdirAll(filepath.Join("testdata", "parity"), 0o755))
	for name, req := range parityRequests() {
		for cname, set := range parityConfigs() {
			cfg := DefaultConfig()
			set(&cfg)
			lines, meta := theirs(t, cfg, req)
			require.NoError(t, os.WriteFile(goldenFile(name, cname), []byte(renderGolden(lines, meta)), 0o644))
		}
	}
}

// recorder is a Prometheus AppenderV2 that keeps what it is given, in our
// own terms.
type recorder struct {
	lines []string
	meta  map[string]storage.Metadata
}

func (r *recorder) Append(_ promstorage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts promstorage.AOptions) (promstorage.SeriesRef, error) {
	var ex []storage.Exemplar
	for _, e := range opts.Exemplars {
		ex = append(ex, storage.Exemplar{Labels: e.Labels, T: e.Ts, V: e.Value})
	}
	switch {
	case h != nil:
		r.lines = append(r.lines, histLine(ls, t, h.ToFloat(nil), ex))
	case fh != nil:
		r.lines = append(r.lines, histLine(ls, t, fh, ex))
	default:
		r.lines = append(r.lines, floatLine(ls, t, v, ex))
	}
	if !opts.Metadata.IsEmpty() {
		r.meta[opts.MetricFamilyName] = storage.Metadata{
			Family: opts.MetricFamilyName, Type: string(opts.Metadata.Type), Unit: opts.Metadata.Unit, Help: opts.Metadata.Help,
		}
	}
	return 1, nil
}

func (*recorder) Commit() error   { return nil }
func (*recorder) Rollback() error { return nil }

// theirs translates md with Prometheus' converter.
func theirs(t *testing.T, cfg Config, md pmetric.Metrics) ([]string, map[string]storage.Metadata) {
	t.Helper()
	pc := config.OTLPConfig{
		PromoteAllResourceAttributes: cfg.PromoteAllResourceAttributes,
		PromoteResourceAttributes:    cfg.PromoteResourceAttributes,
		IgnoreResourceAttributes:     cfg.IgnoreResourceAttributes,
	}
	r := &recorder{meta: map[string]storage.Metadata{}}
	annots, err := prw.NewPrometheusConverter(r).FromMetrics(context.Background(), md, prw.Settings{
		AddMetricSuffixes:                    cfg.TranslationStrategy.ShouldAddSuffixes(),
		AllowUTF8:                            !cfg.TranslationStrategy.ShouldEscape(),
		PromoteResourceAttributes:            prw.NewPromoteResourceAttributes(pc),
		KeepIdentifyingResourceAttributes:    cfg.KeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:              cfg.ConvertHistogramsToNHCB,
		PromoteScopeMetadata:                 cfg.PromoteScopeMetadata,
		LabelNameUnderscoreSanitization:      cfg.LabelNameUnderscoreSanitization,
		LabelNamePreserveMultipleUnderscores: cfg.LabelNamePreserveMultipleUnderscores,
	})
	require.NoError(t, err)
	_ = annots
	return r.lines, r.meta
}
