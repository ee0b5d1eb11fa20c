package web

import (
	"encoding/json"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/tenancy"
)

type param struct{ name, value string }

// Request is what a JSON handler reads: the fasthttp request, the path
// parameters of its route, and helpers for the query string and body.
type Request struct {
	Ctx    *fasthttp.RequestCtx
	params []param
	body   map[string]string // string fields of a JSON object body, once read
}

// Param returns the path parameter name ("" when absent).
func (r *Request) Param(name string) string {
	for _, p := range r.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

// Args returns every value of a parameter: the query string's, then for
// a form POST the body's.
func (r *Request) Args(name string) []string {
	var out []string
	for _, v := range r.Ctx.QueryArgs().PeekMulti(name) {
		out = append(out, string(v))
	}
	if r.Ctx.IsPost() {
		for _, v := range r.Ctx.PostArgs().PeekMulti(name) {
			out = append(out, string(v))
		}
	}
	return out
}

// Arg returns the first value of a parameter, as Args reads them.
func (r *Request) Arg(name string) string {
	if v := r.Ctx.QueryArgs().Peek(name); len(v) > 0 {
		return string(v)
	}
	if r.Ctx.IsPost() {
		return string(r.Ctx.PostArgs().Peek(name))
	}
	return ""
}

// Field reads a value from the query string, a JSON object body or a form
// body, in that order (the ITSM actions take all three).
func (r *Request) Field(name string) (string, error) {
	if v := r.Ctx.QueryArgs().Peek(name); len(v) > 0 {
		return string(v), nil
	}
	body, err := r.jsonBody()
	if err != nil {
		return "", err
	}
	if v, ok := body[name]; ok {
		return v, nil
	}
	return string(r.Ctx.PostArgs().Peek(name)), nil
}

// jsonBody reads the string fields of a JSON object body once.
func (r *Request) jsonBody() (map[string]string, error) {
	if r.body != nil {
		return r.body, nil
	}
	r.body = map[string]string{}
	if strings.HasPrefix(string(r.Ctx.Request.Header.ContentType()), "application/json") && len(r.Ctx.PostBody()) > 0 {
		var raw map[string]any
		if err := json.Unmarshal(r.Ctx.PostBody(), &raw); err != nil {
			return nil, badData("body is not a JSON object: %v", err)
		}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				r.body[k] = s
			}
		}
	}
	return r.body, nil
}

// Tenant is the tenant the request acts for (X-Scope-OrgID, or the user's
// default tenant with authentication on).
func (r *Request) Tenant() (string, error) {
	t, err := tenancy.FromRequest(r.Ctx)
	if err != nil {
		return "", &apiError{typ: errBadData, err: err}
	}
	return t, nil
}

// Who names the caller for audit trails: the signed-in user, else the
// X-User header, else the "who" field, else "api".
func (r *Request) Who() (string, error) {
	if u := auth.UserOf(r.Ctx); u != "" {
		return u, nil
	}
	if u := string(r.Ctx.Request.Header.Peek("X-User")); u != "" {
		return u, nil
	}
	u, err := r.Field("who")
	if u == "" {
		u = "api"
	}
	return u, err
}

// Header returns a request header.
func (r *Request) Header(name string) string { return string(r.Ctx.Request.Header.Peek(name)) }

// Body is the request body.
func (r *Request) Body() []byte { return r.Ctx.PostBody() }

// Accepts reports whether the client's Accept header names mime.
func (r *Request) Accepts(mime string) bool { return strings.Contains(r.Header("Accept"), mime) }
