package storage_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// Validate refuses exactly what Write refuses for the batch's own sake,
// with the same error, and writes nothing.
func TestValidateAgreesWithWrite(t *testing.T) {
	db := st.Open(t, nil)
	ctx := context.Background()
	ok := labels.FromStrings("__name__", "up", "job", "a")
	bad := labels.FromStrings("", "x", "a", "1") // a label without a name
	for _, tc := range []struct {
		name, tenant string
		b            storage.Batch
		valid        bool
	}{
		{"good", "t", storage.Batch{Series: []storage.SeriesSamples{{Labels: ok, Samples: []storage.Sample{{T: 1, V: 1}}}}}, true},
		{"empty tenant", "", storage.Batch{Series: []storage.SeriesSamples{{Labels: ok, Samples: []storage.Sample{{T: 1, V: 1}}}}}, false},
		{"long tenant", strings.Repeat("x", 257), storage.Batch{}, false},
		{"no labels", "t", storage.Batch{Series: []storage.SeriesSamples{{Samples: []storage.Sample{{T: 1, V: 1}}}}}, false},
		{"empty label name", "t", storage.Batch{Series: []storage.SeriesSamples{{Labels: bad, Samples: []storage.Sample{{T: 1, V: 1}}}}}, false},
		{"long value", "t", storage.Batch{Series: []storage.SeriesSamples{{Labels: labels.FromStrings("a", strings.Repeat("v", 1<<20)), Samples: []storage.Sample{{T: 1, V: 1}}}}}, false},
		{"timestamp", "t", storage.Batch{Series: []storage.SeriesSamples{{Labels: ok, Samples: []storage.Sample{{T: math.MaxInt64, V: 1}}}}}, false},
		{"histogram", "t", storage.Batch{Series: []storage.SeriesSamples{{Labels: ok, Histograms: []storage.HSample{{T: 1, H: &histogram.FloatHistogram{Count: -1}}}}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verr := db.Validate(tc.tenant, &tc.b)
			werr := db.Write(ctx, tc.tenant, &tc.b)
			if tc.valid {
				require.NoError(t, verr)
				require.NoError(t, werr)
				return
			}
			require.Error(t, verr)
			require.Error(t, werr)
			require.Equal(t, werr.Error(), verr.Error())
		})
	}
}
