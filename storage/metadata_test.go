package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func writeMetadata(t *testing.T, db *storage.DB, tenant string, ms ...storage.Metadata) {
	t.Helper()
	require.NoError(t, db.Write(context.Background(), tenant, &storage.Batch{Metadata: ms}))
}

func TestMetadataLatestWinsPerTenantAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(dir, &storage.Options{Shards: 2})
	require.NoError(t, err)
	writeMetadata(t, db, "acme",
		storage.Metadata{Family: "http_requests_total", Type: "counter", Help: "Requests."},
		storage.Metadata{Family: "temp", Type: "gauge", Unit: "celsius", Help: "Temperature."})
	writeMetadata(t, db, "acme", storage.Metadata{Family: "http_requests_total", Type: "counter", Help: "Requests served."})
	writeMetadata(t, db, "globex", storage.Metadata{Family: "temp", Type: "no-such-type"})
	// A batch with samples carries metadata too.
	b := storage.Batch{Metadata: []storage.Metadata{{Family: "up", Type: "gauge"}}}
	b.Add(ls("__name__", "up"), storage.Sample{T: 1000, V: 1})
	require.NoError(t, db.Write(context.Background(), "acme", &b))
	want := []storage.Metadata{
		{Family: "http_requests_total", Type: "counter", Help: "Requests served."},
		{Family: "temp", Type: "gauge", Unit: "celsius", Help: "Temperature."},
		{Family: "up", Type: "gauge"},
	}
	check := func(db *storage.DB) {
		got, err := db.Metadata("acme", "", -1, -1)
		require.NoError(t, err)
		require.Equal(t, want, got)
		got, err = db.Metadata("acme", "", 2, -1)
		require.NoError(t, err)
		require.Equal(t, want[:2], got)
		got, err = db.Metadata("acme", "temp", -1, -1)
		require.NoError(t, err)
		require.Equal(t, want[1:2], got)
		got, err = db.Metadata("acme", "nope", -1, -1)
		require.NoError(t, err)
		require.Empty(t, got)
		got, err = db.Metadata("globex", "", -1, -1)
		require.NoError(t, err)
		require.Equal(t, []storage.Metadata{{Family: "temp", Type: "unknown"}}, got)
	}
	check(db)
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, &storage.Options{Shards: 2})
	check(db)
}

func TestMetadataBounded(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxMetadataFamilies: 3})
	for i := range 5 {
		writeMetadata(t, db, "acme", storage.Metadata{Family: fmt.Sprint("m", i), Type: "gauge"})
	}
	// Invalid entries are dropped; they do not fail the write.
	writeMetadata(t, db, "acme", storage.Metadata{Family: "", Type: "gauge"}, storage.Metadata{Family: "bad\xff", Type: "gauge"})
	// A known family still changes at the limit.
	writeMetadata(t, db, "acme", storage.Metadata{Family: "m0", Type: "counter"})
	got, err := db.Metadata("acme", "", -1, -1)
	require.NoError(t, err)
	require.Equal(t, []storage.Metadata{{Family: "m0", Type: "counter"}, {Family: "m1", Type: "gauge"}, {Family: "m2", Type: "gauge"}}, got)
	require.Equal(t, int64(4), db.Stats().MetadataDropped)
}
