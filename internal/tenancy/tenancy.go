// Package tenancy resolves the tenant of an HTTP request. Every API call
// is scoped by tenant: the X-Scope-OrgID header names it (as in Cortex,
// Mimir and Loki), and requests without the header belong to Default.
//
//	tenant, err := tenancy.FromRequest(ctx)
package tenancy

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// Header is the request header that names the tenant.
const Header = "X-Scope-OrgID"

// Default is the tenant of requests that name none.
const Default = "default"

// ErrInvalid reports a tenant name that cannot be used.
var ErrInvalid = errors.New("tenancy: invalid tenant")

// FromRequest returns the request's tenant.
func FromRequest(ctx *fasthttp.RequestCtx) (string, error) {
	v := ctx.Request.Header.Peek(Header)
	if len(v) == 0 {
		return Default, nil
	}
	return Parse(string(v))
}

// Parse validates a tenant name: 1 to 256 bytes of printable UTF-8
// without '|' (which multi-tenant queries reserve as a separator).
func Parse(s string) (string, error) {
	if s == "" || len(s) > 256 || !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: %q must be 1 to 256 bytes of UTF-8", ErrInvalid, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '|' {
			return "", fmt.Errorf("%w: %q contains %q", ErrInvalid, s, r)
		}
	}
	return s, nil
}
