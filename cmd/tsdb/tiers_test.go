package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

func TestRetentionTiersFlag(t *testing.T) {
	c, err := parseServeFlags([]string{"--retention=7d", "--retention.tiers=raw:30d,5m:1y,1h:0", "--retention.max-bytes=1000000"})
	require.NoError(t, err)
	require.Equal(t, 30*24*time.Hour, c.rawRetention(), "raw: overrides --retention")
	require.Equal(t, []storage.Tier{{Resolution: 5 * time.Minute, Retention: 365 * 24 * time.Hour}, {Resolution: time.Hour}}, c.retentionTiers.tiers)
	require.Equal(t, int64(1000000), c.maxBytes)
	for _, bad := range []string{"5m", "7m:1y", "1h:1y,5m:1y", "5m:1h"} {
		_, err := parseServeFlags([]string{"--retention.tiers=" + bad})
		require.Error(t, err, bad)
	}
}
