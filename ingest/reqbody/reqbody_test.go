package reqbody

import (
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/storage"
)

func request(body []byte, gz bool, query string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/import?" + query)
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write(body)
		_ = w.Close()
		body = b.Bytes()
		ctx.Request.Header.Set("Content-Encoding", "gzip")
	}
	ctx.Request.SetBody(body)
	return &ctx
}

func TestRead(t *testing.T) {
	bg := context.Background()
	l := Limits{MaxBodyBytes: 100, MaxDecodedBytes: 1000, InFlight: limits.NewInFlight(1<<20, 0)}
	body, res, err := Read(bg, request([]byte("up 1\n"), false, ""), l)
	require.NoError(t, err)
	require.Equal(t, "up 1\n", string(body))
	res.Release()

	big := []byte(strings.Repeat("x", 500))
	body, res, err = Read(bg, request(big, true, ""), l)
	require.NoError(t, err, "gzip under the decoded limit")
	require.Equal(t, big, body)
	res.Release()

	_, _, err = Read(bg, request(big, false, ""), l)
	require.ErrorContains(t, err, "--remote-write.max-body-bytes")
	require.Equal(t, 413, err.(*Error).Status)
	_, _, err = Read(bg, request([]byte(strings.Repeat("x", 5000)), true, ""), Limits{MaxBodyBytes: 1000, MaxDecodedBytes: 1000, InFlight: limits.NewInFlight(1<<20, 0)})
	require.ErrorIs(t, err, limits.ErrTooLarge, "a gzip bomb stops at the decoded limit")
	ctx := request([]byte("not gzip"), false, "")
	ctx.Request.Header.Set("Content-Encoding", "gzip")
	_, _, err = Read(bg, ctx, l)
	require.ErrorContains(t, err, "bad gzip body")
	require.Equal(t, int64(0), l.InFlight.Used(), "every reservation released")

	ctx = request(nil, false, "")
	Fail(ctx, err)
	require.Equal(t, 400, ctx.Response.StatusCode())
}

func TestExtraLabels(t *testing.T) {
	ls, err := ExtraLabels(request(nil, false, "extra_label=dc=kr&extra_label=env=prod"))
	require.NoError(t, err)
	require.Len(t, ls, 2)
	require.Equal(t, "dc", ls[0].Name)
	require.Equal(t, "prod", ls[1].Value)
	_, err = ExtraLabels(request(nil, false, "extra_label=novalue"))
	require.ErrorContains(t, err, `bad extra_label "novalue"`)
}

func TestSetLabels(t *testing.T) {
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "up", "dc", "us"))
	SetLabels(&b, []labels.Label{{Name: "dc", Value: "kr"}, {Name: "env", Value: "prod"}})
	require.Equal(t, labels.FromStrings("__name__", "up", "dc", "kr", "env", "prod"), b.Series[0].Labels)
}
