package auth

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func testAuth(t *testing.T) *Authenticator {
	pw, err := HashPassword("s3cret")
	require.NoError(t, err)
	a, err := New(Config{Users: []User{
		{Name: "grafana", TokenSHA256: HashToken("tok-read"), Roles: []Role{Read}, Tenants: []string{"acme", "beta"}},
		{Name: "agent", TokenSHA256: HashToken("tok-write"), Roles: []Role{Write}, Tenants: []string{"acme"}},
		{Name: "oncall", Username: "kim", PasswordHash: pw, Roles: []Role{Operator}, Tenants: []string{"acme"}},
		{Name: "root", TokenSHA256: HashToken("tok-admin"), Roles: []Role{Admin}, Tenants: []string{"*"}},
	}})
	require.NoError(t, err)
	return a
}

func call(a *Authenticator, authz, tenant string, need Role) (int, string, string) {
	var ctx fasthttp.RequestCtx
	if authz != "" {
		ctx.Request.Header.Set("Authorization", authz)
	}
	if tenant != "" {
		ctx.Request.Header.Set("X-Scope-OrgID", tenant)
	}
	err := a.Authorize(&ctx, need)
	code, msg := 0, ""
	switch {
	case errors.Is(err, ErrForbidden):
		code, msg = 403, err.Error()
	case err != nil:
		code, msg = 401, err.Error()
	}
	return code, string(ctx.Request.Header.Peek("X-Scope-OrgID")), msg
}

func basicHeader(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

func TestRolesAndTenants(t *testing.T) {
	a := testAuth(t)
	for _, c := range []struct {
		authz, tenant string
		need          Role
		code          int
		wantTenant    string
	}{
		{"", "", Read, 401, ""},
		{"Bearer nope", "", Read, 401, ""},
		{"Bearer tok-read", "", Read, 0, "acme"},
		{"Bearer tok-read", "beta", Read, 0, "beta"},
		{"Bearer tok-read", "gamma", Read, 403, ""},
		{"Bearer tok-read", "", Write, 403, ""},
		{"Bearer tok-write", "", Write, 0, "acme"},
		{"Bearer tok-write", "", Read, 403, ""},
		{basicHeader("kim", "s3cret"), "", Read, 0, "acme"},
		{basicHeader("kim", "s3cret"), "", Operator, 0, "acme"},
		{basicHeader("kim", "s3cret"), "", Admin, 403, ""},
		{basicHeader("kim", "wrong"), "", Read, 401, ""},
		{basicHeader("lee", "s3cret"), "", Read, 401, ""},
		{"Basic !!!", "", Read, 401, ""},
		{"Bearer tok-admin", "anyone", Admin, 0, "anyone"},
		{"Bearer tok-admin", "", Write, 0, "default"},
		{"", "", Public, 0, ""},
	} {
		code, tenant, body := call(a, c.authz, c.tenant, c.need)
		require.Equal(t, c.code, code, "%+v: %s", c, body)
		if c.code == 0 && c.need != Public {
			require.Equal(t, c.wantTenant, tenant, "%+v", c)
		}
		if c.code != 0 {
			require.NotEmpty(t, body, "a refusal says why") // web wraps it in the error envelope
		}
	}
	// The cached basic credentials still refuse a wrong password.
	code, _, _ := call(a, basicHeader("kim", "s3cret!"), "", Read)
	require.Equal(t, 401, code)
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Users: []User{{Name: "x", Roles: []Role{Read}, Tenants: []string{"a"}}}},
		{Users: []User{{Name: "x", TokenSHA256: "abc", Roles: []Role{Read}, Tenants: []string{"a"}}}},
		{Users: []User{{Name: "x", Username: "u", PasswordHash: "plain", Roles: []Role{Read}, Tenants: []string{"a"}}}},
		{Users: []User{{Name: "x", TokenSHA256: HashToken("t"), Roles: []Role{"god"}, Tenants: []string{"a"}}}},
		{Users: []User{{Name: "x", TokenSHA256: HashToken("t"), Roles: []Role{Read}}}},
		{Users: []User{{Name: "x", TokenSHA256: HashToken("t"), Roles: []Role{Read}, Tenants: []string{"a"}}, {Name: "x", TokenSHA256: HashToken("u"), Roles: []Role{Read}, Tenants: []string{"a"}}}},
	} {
		require.Error(t, c.Validate(), "%+v", c)
	}
}

func FuzzIdentify(f *testing.F) {
	a, _ := New(Config{Users: []User{{Name: "x", TokenSHA256: HashToken("t"), Roles: []Role{Read}, Tenants: []string{"a"}}}})
	for _, s := range []string{"", "Bearer t", "Basic Og==", "Basic", "Bearer ", "Basic eDp5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		u, err := a.Identify(h)
		if (u == nil) == (err == nil) {
			t.Fatalf("%q: user %v, err %v", h, u, err)
		}
	})
}
