package web

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/valyala/fasthttp"
)

// What a Handler may return besides plain data, which is encoded with
// encoding/json into the success envelope.
type (
	// rawJSON is data already encoded as JSON.
	rawJSON []byte
	// jsonAppender is data that appends its own JSON (the hot paths:
	// query results, series and label lists).
	jsonAppender interface{ AppendJSON(b []byte) []byte }
	// annotated is data with Prometheus's warnings and infos beside it.
	annotated struct {
		data            any
		warnings, infos []string
	}
	// withStatus is data answered with another status than 200.
	withStatus struct {
		code int
		data any
	}
	// noContent answers 204 with no body.
	noContent struct{}
	// body is a success that is not JSON: an HTML report, a chart, YAML.
	body struct {
		contentType string
		b           []byte
	}
	// stream is a success read from r (closed by fasthttp if a Closer).
	stream struct {
		contentType string
		r           io.Reader
		size        int
	}
	// streamWriter is a success written by fn after the status is sent;
	// a failure then can only truncate the stream.
	streamWriter struct {
		contentType string
		fn          func(w *bufio.Writer)
	}
)

// respond answers data in the success envelope (or as its special type
// says).
func respond(ctx *fasthttp.RequestCtx, data any) {
	switch d := data.(type) {
	case proxied:
		respondProxied(ctx, d)
		return
	case noContent:
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	case body:
		ctx.SetContentType(d.contentType)
		ctx.SetBody(d.b)
		return
	case stream:
		ctx.SetContentType(d.contentType)
		ctx.SetBodyStream(d.r, d.size)
		return
	case streamWriter:
		ctx.SetContentType(d.contentType)
		ctx.SetBodyStreamWriter(d.fn)
		return
	case withStatus:
		ctx.SetStatusCode(d.code)
		data = d.data
	}
	// NB: the body is appended to in the response's own buffer, which
	// fasthttp pools: a query's answer of a few hundred KB grew a new one
	// by doubling each time (issue 18: a third of a range query's
	// allocations), and SetBody copied it once more.
	b := ctx.Response.SwapBody(nil)[:0]
	b = append(b, `{"status":"success","data":`...)
	var ann *annotated
	if a, ok := data.(annotated); ok {
		ann, data = &a, a.data
	}
	b, err := appendData(b, data)
	if err != nil {
		respondError(ctx, err, false)
		return
	}
	if ann != nil {
		b = appendStrings(b, "warnings", ann.warnings)
		b = appendStrings(b, "infos", ann.infos)
	}
	b = append(b, "}\n"...)
	ctx.SetContentType("application/json")
	ctx.Response.SwapBody(b)
}

func appendData(b []byte, data any) ([]byte, error) {
	switch d := data.(type) {
	case rawJSON:
		return append(b, d...), nil
	case jsonAppender:
		return d.AppendJSON(b), nil
	}
	j, err := json.Marshal(data)
	if err != nil {
		return nil, &apiError{typ: errInternal, err: err}
	}
	return append(b, j...), nil
}

// appendStrings appends `,"name":[…]` unless list is empty.
func appendStrings(b []byte, name string, list []string) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, w := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, w)
	}
	return append(b, ']')
}
