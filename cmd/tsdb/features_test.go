package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEnableFeature: --enable-feature=promql-experimental-functions turns
// limit_ratio on through the HTTP API; without it the query gets Prometheus's
// error; an unknown feature stops start-up and names the known ones.
func TestEnableFeature(t *testing.T) {
	_, err := parseServeFlags([]string{"--enable-feature=promql-experimental-functions,promql-nope"})
	require.EqualError(t, err, `--enable-feature: query: unknown feature "promql-nope"; known features: promql-binop-fill-modifiers, promql-delayed-name-removal, promql-experimental-functions, promql-extended-range-selectors`)

	c := &http.Client{Timeout: 10 * time.Second}
	query := func(addr, q string) (int, map[string]any) {
		resp, err := c.Get("http://" + addr + "/api/v1/query?time=100&query=" + url.QueryEscape(q))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal(b, &body), string(b))
		return resp.StatusCode, body
	}
	const q = `limit_ratio(1, vector(1))`
	off := startInProcess(t)
	code, body := query(off, q)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "bad_data", body["errorType"])
	require.Equal(t, `invalid parameter "query": 1:1: parse error: limit_ratio() is experimental and must be enabled with --enable-feature=promql-experimental-functions`, body["error"])

	on := startInProcess(t, "--enable-feature", "promql-experimental-functions")
	code, body = query(on, q)
	require.Equal(t, http.StatusOK, code, body)
	res := body["data"].(map[string]any)["result"].([]any)
	require.Len(t, res, 1)
	require.Equal(t, "1", res[0].(map[string]any)["value"].([]any)[1])
}
