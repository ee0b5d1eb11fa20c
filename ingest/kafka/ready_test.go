package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// gatedWriter holds every write until its gate is closed.
type gatedWriter struct {
	storage.Writer
	gate chan struct{}
}

func (g *gatedWriter) Write(ctx context.Context, tenant string, b *storage.Batch) error {
	select {
	case <-g.gate:
		return g.Writer.Write(ctx, tenant, b)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A node whose partitions hold records it has not written yet is not
// ready, and says which partitions it is catching up; once it wrote them
// up to the end offsets listed after its assignment, it is.
func TestReadyCatchesUp(t *testing.T) {
	k := apptest.StartKafka(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testConfig(k.Addr, "n1")
	db := st.Open(t, nil)
	p, err := NewProducer(ctx, cfg, &Options{Validate: db.Validate})
	require.NoError(t, err)
	defer p.Close()
	for i := range 20 {
		var b storage.Batch
		for s := range 10 {
			b.Add(labels.FromStrings("__name__", "m", "s", fmt.Sprint(s)), storage.Sample{T: int64(i) * 1000, V: float64(i)})
		}
		require.NoError(t, p.Write(ctx, "acme", &b))
	}

	w := &gatedWriter{Writer: db, gate: make(chan struct{})}
	c, err := NewConsumer(cfg, w, nil)
	require.NoError(t, err)
	defer c.Close()
	reg, err := NewRegistry(ctx, cfg, "http://127.0.0.1:1", c, nil)
	require.NoError(t, err)
	defer reg.Close()
	require.ErrorContains(t, reg.Ready(), "Kafka has not answered yet")
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = c.Run(rctx); done <- struct{}{} }()
	go func() { _ = reg.Run(rctx); done <- struct{}{} }()
	defer func() { stop(); <-done; <-done }()

	var why error
	require.Eventually(t, func() bool {
		why = reg.Ready()
		return why != nil && len(c.Owned()) == 4 && contains(why, "(at offset 0 of")
	},
		time.Minute, 50*time.Millisecond, "not ready while catching up: %v", why)
	t.Logf("not ready: %v", why)
	require.ErrorContains(t, why, "catching up partitions 0 (at offset 0 of")
	close(w.gate)
	require.Eventually(t, func() bool { why = reg.Ready(); return why == nil }, time.Minute, 50*time.Millisecond,
		"ready once caught up: %v", why)
	require.Equal(t, 200, countSamples(t, db, "acme"))
}

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
