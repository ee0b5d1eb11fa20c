// Package apijson writes the Prometheus-style JSON envelope:
// {"status":"success","data":…} and
// {"status":"error","errorType":…,"error":…}.
package apijson

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// Reply answers code with data in the success envelope.
func Reply(ctx *fasthttp.RequestCtx, code int, data any) {
	b, err := json.Marshal(map[string]any{"status": "success", "data": data})
	if err != nil {
		Fail(ctx, fasthttp.StatusInternalServerError, "internal", "encoding the answer: "+err.Error())
		return
	}
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// Fail answers code with the error envelope.
func Fail(ctx *fasthttp.RequestCtx, code int, typ, msg string) {
	b, _ := json.Marshal(map[string]any{"status": "error", "errorType": typ, "error": msg})
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}
