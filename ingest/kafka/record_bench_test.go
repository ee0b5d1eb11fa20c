package kafka

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/emsdb/tsdb/ingest/remotewrite"
	"github.com/emsdb/tsdb/storage"
)

// BenchmarkEncode splits a remote-write 1.0 request of 2,000 series (one
// sample each, labels by key as the decoder hands them over) into the
// records of 6 partitions: a cluster node's work per write before Kafka.
func BenchmarkEncode(b *testing.B) {
	req := &prompb.WriteRequest{}
	for i := range 2000 {
		ls := labels.FromStrings("__name__", fmt.Sprintf("node_metric_%d", i%100), "cpu", fmt.Sprint(i%8),
			"instance", fmt.Sprintf("host-%d.example.com:9100", i/100), "job", "node", "mode", "user")
		var pl []prompb.Label
		ls.Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: pl, Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1}}})
	}
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	var batch storage.Batch
	if _, err := remotewrite.NewDecoder().DecodeV1(raw, &batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode("default", &batch, 6); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "samples/s")
}
