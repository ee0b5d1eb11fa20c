package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
		{MaxLoginFailures: 1_000_000, Users: []User{{Name: "x", TokenSHA256: HashToken("t"), Roles: []Role{Read}, Tenants: []string{"a"}}}},
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
		u, err := a.Identify(h, netip.Addr{})
		if (u == nil) == (err == nil) {
			t.Fatalf("%q: user %v, err %v", h, u, err)
		}
	})
}

// countBcrypt makes a's bcrypt checks counted, and its clock manual.
func countBcrypt(a *Authenticator) (calls *atomic.Int64, advance func(time.Duration)) {
	calls = &atomic.Int64{}
	compare := a.compare
	a.compare = func(h, p []byte) error { calls.Add(1); return compare(h, p) }
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	return calls, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

// TestFailedLoginsThrottled: an address gets max_login_failures_per_minute
// wrong passwords, then ErrThrottled with a Retry-After and no bcrypt
// (before, every guess cost a bcrypt: 400 guesses were 17 s of CPU);
// other addresses are not held back, a verified header still works, and
// the budget refills over the minute.
func TestFailedLoginsThrottled(t *testing.T) {
	a := testAuth(t)
	calls, advance := countBcrypt(a)
	attacker, other := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.1")
	for i := range 10 {
		_, err := a.Identify(basicHeader("kim", fmt.Sprint("guess", i)), attacker)
		require.ErrorIs(t, err, ErrBadCredentials)
	}
	require.EqualValues(t, 10, calls.Load())
	for _, h := range []string{basicHeader("kim", "guess"), basicHeader("nobody", "x"), basicHeader("kim", "s3cret")} {
		_, err := a.Identify(h, attacker)
		require.ErrorIs(t, err, ErrThrottled, "even the right password: it cannot be checked without bcrypt")
		var te *ThrottledError
		require.ErrorAs(t, err, &te)
		require.Equal(t, 6*time.Second, te.RetryAfter, "one failure back every 6s")
	}
	require.EqualValues(t, 10, calls.Load(), "no bcrypt while throttled")
	require.ErrorIs(t, (func() error { _, err := a.Identify("Bearer nope", attacker); return err })(), ErrBadCredentials,
		"tokens cost no bcrypt and are not throttled")

	u, err := a.Identify(basicHeader("kim", "s3cret"), other)
	require.NoError(t, err, "another address")
	require.Equal(t, "oncall", u.Name)
	u, err = a.Identify(basicHeader("kim", "s3cret"), attacker)
	require.NoError(t, err, "a header already verified needs no bcrypt, so is not throttled")
	require.Equal(t, "oncall", u.Name)

	advance(6 * time.Second)
	_, err = a.Identify(basicHeader("kim", "again"), attacker)
	require.ErrorIs(t, err, ErrBadCredentials, "one more guess after 6s")
	_, err = a.Identify(basicHeader("kim", "again"), attacker)
	require.ErrorIs(t, err, ErrThrottled)

	// An IPv6 client's /64 is one address.
	v6 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for i := range 10 {
		_, err := a.Identify(basicHeader("kim", "x"), v6(fmt.Sprintf("2001:db8::%x", i+1)))
		require.ErrorIs(t, err, ErrBadCredentials)
	}
	_, err = a.Identify(basicHeader("kim", "x"), v6("2001:db8::ffff:1"))
	require.ErrorIs(t, err, ErrThrottled)
	_, err = a.Identify(basicHeader("kim", "x"), v6("2001:db8:0:1::1"))
	require.ErrorIs(t, err, ErrBadCredentials, "the next /64")

	// Successes do not use the budget up.
	calls.Store(0)
	b := testAuth(t)
	b.compare = func(h, p []byte) error { calls.Add(1); return nil }
	for i := range 50 {
		_, err := b.Identify(basicHeader("kim", fmt.Sprint("p", i)), attacker)
		require.NoError(t, err)
	}
}

// TestVerifiedHeadersCached: a verified basic-auth header costs one
// bcrypt a minute, not one per request, and the cache stays bounded.
func TestVerifiedHeadersCached(t *testing.T) {
	a := testAuth(t)
	calls, advance := countBcrypt(a)
	for range 100 {
		u, err := a.Identify(basicHeader("kim", "s3cret"), netip.Addr{})
		require.NoError(t, err)
		require.Equal(t, "oncall", u.Name)
	}
	require.EqualValues(t, 1, calls.Load())
	advance(verifiedTTL)
	_, err := a.Identify(basicHeader("kim", "s3cret"), netip.Addr{})
	require.NoError(t, err)
	require.EqualValues(t, 2, calls.Load(), "checked again after the TTL")

	a.compare = func(h, p []byte) error { return nil } // every password right: fill the cache
	for i := range maxVerified + 100 {
		_, err := a.Identify(basicHeader("kim", fmt.Sprint(i)), netip.Addr{})
		require.NoError(t, err)
	}
	a.mu.Lock()
	require.LessOrEqual(t, len(a.mu.verified), maxVerified)
	a.mu.Unlock()
}

// TestBcryptSlots: parallel logins run at most half the CPUs' worth of
// bcrypt at once, so guesses from many addresses leave CPU for queries.
func TestBcryptSlots(t *testing.T) {
	a := testAuth(t)
	a.maxFailures = -1
	var running, most atomic.Int64
	a.compare = func(h, p []byte) error {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		return errors.New("wrong")
	}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() { _, _ = a.Identify(basicHeader("kim", fmt.Sprint(i)), netip.Addr{}) })
	}
	wg.Wait()
	require.LessOrEqual(t, most.Load(), int64(cap(a.bcrypts)))
	require.Positive(t, most.Load())
}
