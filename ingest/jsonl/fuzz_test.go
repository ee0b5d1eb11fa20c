package jsonl

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// FuzzDecode feeds bodies to the decoder: whatever the bytes, it must not
// panic; what it accepts must be series with labels, and histograms that
// validate. Seeds are the bodies of the tests and those in
// testdata/fuzz/FuzzDecode; plain go test replays them.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(body))
	f.Add([]byte(hostile("buckets", 64)))
	f.Add([]byte(`{"metric":{"__name__":"a"},"histograms":[{"schema":-53,"positive_spans":[{"offset":0,"length":1}],"positive_buckets":[1],"custom_values":[]}],"histogram_timestamps":[1]}`))
	f.Add([]byte(`{"metric":{"__name__":"a","b":""},"values":[1e308,"-Inf"],"timestamps":[-1,9223372036854775807]}` + "\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b storage.Batch
		var d Decoder
		var reserved int64
		d.Reserve = func(n int64) error { reserved += n; return nil }
		if err := d.Decode(in, &b); err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.LessOrEqual(t, reserved, Cost(in)+int64(len(in))*(elementBytes+objectBytes), "reserved per line, about the body's cost")
		for _, s := range b.Series {
			require.False(t, s.Labels.IsEmpty(), "%q", in)
			require.True(t, len(s.Samples)+len(s.Histograms) > 0, "%q", in)
			for _, h := range s.Histograms {
				require.NoError(t, h.H.Validate(), "%q", in)
			}
		}
	})
}
