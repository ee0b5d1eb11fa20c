package otlp

import (
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/emsdb/tsdb/storage"
)

// FuzzOTLPDecode feeds bodies to the decode and translation the handler
// runs: whatever the bytes, it must not panic, and what it stores must be
// series storage can validate (sorted labels with a name). Seeds are in
// testdata/fuzz/FuzzOTLPDecode; plain go test replays them.
func FuzzOTLPDecode(f *testing.F) {
	for _, md := range []pmetric.Metrics{everyType(), namesAndUnits(), stalePoints(), twoResources()} {
		f.Add(protoBody(f, md), false)
		f.Add(jsonBody(f, md), true)
	}
	cfgs := []Config{DefaultConfig(), {TranslationStrategy: "NoTranslation", ConvertHistogramsToNHCB: true, PromoteAllResourceAttributes: true, PromoteScopeMetadata: true}}
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		req := pmetricotlp.NewExportRequest()
		var err error
		if isJSON {
			err = req.UnmarshalJSON(body)
		} else {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			return
		}
		for _, cfg := range cfgs {
			var b storage.Batch
			res, err := NewTranslator(cfg).Translate(req.Metrics(), &b)
			require.NoError(t, err)
			require.GreaterOrEqual(t, res.Rejected, int64(0))
			for _, s := range b.Series {
				require.NotEmpty(t, s.Labels.Get("__name__"), "%s", s.Labels)
				require.NoError(t, s.Labels.Validate(func(l labels.Label) error { return nil }))
				for _, h := range s.Histograms {
					if !storage.IsStaleHistogram(h.H) {
						require.NoError(t, h.H.Validate(), "%s", s.Labels)
					}
				}
			}
		}
	})
}

// TestDecodedSizeCoversPdata measures the memory pdata allocates to
// decode requests of several shapes, the worst ones included (empty data
// points, two bytes each on the wire; empty attributes; a typical
// request): decodedSize must cover it, and not by far for the typical.
func TestDecodedSizeCoversPdata(t *testing.T) {
	typical := pmetric.NewMetrics()
	for range 200 {
		everyType().ResourceMetrics().MoveAndAppendTo(typical.ResourceMetrics())
	}
	points, attrs, exemplars := pmetric.NewMetrics(), pmetric.NewMetrics(), pmetric.NewMetrics()
	pts := points.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints()
	for range 100_000 {
		pts.AppendEmpty()
	}
	p := attrs.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	for i := range 20_000 {
		p.Attributes().PutEmpty(string(rune('a'+i%26)) + string(rune(i)))
	}
	ep := exemplars.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySum().DataPoints().AppendEmpty()
	for range 100_000 {
		ep.Exemplars().AppendEmpty()
	}
	hists, exps, sums := pmetric.NewMetrics(), pmetric.NewMetrics(), pmetric.NewMetrics()
	hp := hists.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyHistogram().DataPoints()
	xp := exps.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyExponentialHistogram().DataPoints()
	sp := sums.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySummary().DataPoints()
	for range 100_000 {
		hp.AppendEmpty()
		xp.AppendEmpty()
		sp.AppendEmpty()
	}
	for name, md := range map[string]pmetric.Metrics{"typical": typical, "empty points": points, "empty attributes": attrs, "empty exemplars": exemplars,
		"empty histogram points": hists, "empty exponential points": exps, "empty summary points": sums} {
		body := protoBody(t, md)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		req := pmetricotlp.NewExportRequest()
		require.NoError(t, req.UnmarshalProto(body))
		runtime.ReadMemStats(&after)
		used := int64(after.TotalAlloc - before.TotalAlloc)
		est := decodedSize(body)
		jbody := jsonBody(t, md)
		var jbefore, jafter runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&jbefore)
		jreq := pmetricotlp.NewExportRequest()
		require.NoError(t, jreq.UnmarshalJSON(jbody))
		runtime.ReadMemStats(&jafter)
		jused := int64(jafter.TotalAlloc - jbefore.TotalAlloc)
		jest := decodedSizeJSON(jbody)
		t.Logf("%s: JSON body %d bytes, pdata allocated %d (%.1fx), estimate %d (%.1fx)", name, len(jbody), jused,
			float64(jused)/float64(len(jbody)), jest, float64(jest)/float64(len(jbody)))
		require.GreaterOrEqual(t, jest, jused, name+" (JSON)")
		runtime.KeepAlive(jreq)
		t.Logf("%s: body %d bytes, pdata allocated %d (%.1fx), estimate %d (%.1fx)", name, len(body), used,
			float64(used)/float64(len(body)), est, float64(est)/float64(len(body)))
		require.GreaterOrEqual(t, est, used, name)
		require.Less(t, est, 4*used, name)
		runtime.KeepAlive(req)
	}
}
