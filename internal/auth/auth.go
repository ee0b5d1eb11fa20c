// Package auth authenticates API requests (bearer tokens and basic auth
// with hashed secrets), checks the role an endpoint needs, and binds each
// request to one of the tenants its credentials allow.
//
// Roles: read (queries, listings, console), write (ingest), operator
// (incident and problem actions; includes read), metrics (/metrics, which
// shows every tenant's rule groups and sources: for the operators'
// scraper), admin (everything).
// Secrets are stored hashed: tokens as SHA-256 (they are long and random),
// passwords with bcrypt; `tsdb auth hash` makes both.
//
// A bcrypt check costs tens of milliseconds of CPU, so basic auth is
// guarded three ways: a verified header is remembered for a minute (a
// dashboard does not pay bcrypt per request); each client address may
// fail MaxLoginFailures times a minute, then gets ErrThrottled (429)
// without a bcrypt; and at most half the CPUs run bcrypt at once.
package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/emsdb/tsdb/internal/errkind"
	"github.com/emsdb/tsdb/internal/tenancy"
)

// Role is what an endpoint needs.
type Role string

// Roles. Public endpoints need none.
const (
	Public   Role = ""
	Read     Role = "read"
	Write    Role = "write"
	Operator Role = "operator"
	// Metrics is tsdb's own /metrics: its series name every tenant's
	// rule groups, so it is the operators', not the tenants'. Admin
	// holds it; give a scraper only this role.
	Metrics Role = "metrics"
	Admin   Role = "admin"
)

// User is one set of credentials.
type User struct {
	Name string `yaml:"name"`
	// TokenSHA256 is the hex SHA-256 of a bearer token.
	TokenSHA256 string `yaml:"token_sha256"`
	// Username and PasswordHash (bcrypt) are basic-auth credentials.
	Username     string `yaml:"username"`
	PasswordHash string `yaml:"password_hash"`
	Roles        []Role `yaml:"roles"`
	// Tenants the user may act for; "*" is any. The first is the default
	// when a request names none.
	Tenants []string `yaml:"tenants"`
}

// Config is the auth: section of the config file.
type Config struct {
	Users []User `yaml:"users"`
	// MaxLoginFailures is how many failed basic-auth logins one client
	// address (an IPv6 /64 counts as one) may make per minute, as a
	// token bucket: that many at once, then one every minute/N. Over it,
	// basic auth from the address answers 429 with Retry-After without
	// checking the password. Default 10; negative: no bound.
	MaxLoginFailures int `yaml:"max_login_failures_per_minute"`
}

// Bounds of the basic-auth caches.
const (
	verifiedTTL     = time.Minute // how long a verified basic-auth header is trusted without bcrypt
	maxVerified     = 4096        // headers remembered
	maxFailureAddrs = 65536       // addresses whose failures are counted
)

// Validate checks the users.
func (c *Config) Validate() error {
	if c.MaxLoginFailures > 100_000 {
		return fmt.Errorf("auth: max_login_failures_per_minute %d: at most 100000 (negative: no bound)", c.MaxLoginFailures)
	}
	names := map[string]bool{}
	for i, u := range c.Users {
		if u.Name == "" {
			return fmt.Errorf("auth user %d: name is required", i)
		}
		if names[u.Name] {
			return fmt.Errorf("auth user %q: defined twice", u.Name)
		}
		names[u.Name] = true
		if u.TokenSHA256 == "" && u.Username == "" {
			return fmt.Errorf("auth user %q: needs token_sha256 or username and password_hash", u.Name)
		}
		if u.TokenSHA256 != "" {
			if b, err := hex.DecodeString(u.TokenSHA256); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("auth user %q: token_sha256 must be 64 hex digits (tsdb auth hash --token)", u.Name)
			}
		}
		if u.Username != "" {
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				return fmt.Errorf("auth user %q: password_hash must be a bcrypt hash (tsdb auth hash --password): %v", u.Name, err)
			}
		}
		if len(u.Roles) == 0 {
			return fmt.Errorf("auth user %q: no roles", u.Name)
		}
		for _, r := range u.Roles {
			switch r {
			case Read, Write, Operator, Metrics, Admin:
			default:
				return fmt.Errorf("auth user %q: role %q (read, write, operator, metrics, admin)", u.Name, r)
			}
		}
		if len(u.Tenants) == 0 {
			return fmt.Errorf("auth user %q: no tenants (use [\"*\"] for all)", u.Name)
		}
		for _, t := range u.Tenants {
			if t == "*" {
				continue
			}
			if _, err := tenancy.Parse(t); err != nil {
				return fmt.Errorf("auth user %q: %w", u.Name, err)
			}
		}
	}
	return nil
}

// Authenticator checks requests against the configured users. It is
// safe for concurrent use.
type Authenticator struct {
	byToken map[[sha256.Size]byte]*User
	byName  map[string]*User

	maxFailures int
	now         func() time.Time
	// compare is bcrypt.CompareHashAndPassword (tests count the calls).
	compare func(hash, password []byte) error
	bcrypts chan struct{} // slots for bcrypt checks running at once

	mu struct {
		sync.Mutex
		verified map[[sha256.Size]byte]verified // basic-auth headers bcrypt accepted
		failures map[netip.Addr]*bucket         // failed logins per client address
	}
}

type verified struct {
	u     *User
	until time.Time
}

// bucket is a token bucket of failed logins: tokens left, as of at.
type bucket struct {
	tokens float64
	at     time.Time
}

// New builds an Authenticator; cfg must be valid.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{byToken: map[[sha256.Size]byte]*User{}, byName: map[string]*User{},
		maxFailures: cfg.MaxLoginFailures, now: time.Now, compare: bcrypt.CompareHashAndPassword,
		bcrypts: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
	if a.maxFailures == 0 {
		a.maxFailures = 10
	}
	a.mu.verified = map[[sha256.Size]byte]verified{}
	a.mu.failures = map[netip.Addr]*bucket{}
	for i := range cfg.Users {
		u := &cfg.Users[i]
		if u.TokenSHA256 != "" {
			var k [sha256.Size]byte
			b, _ := hex.DecodeString(u.TokenSHA256)
			copy(k[:], b)
			a.byToken[k] = u
		}
		if u.Username != "" {
			a.byName[u.Username] = u
		}
	}
	return a, nil
}

// Has reports whether the user holds role r: admin holds every role,
// operator holds read.
func (u *User) Has(r Role) bool {
	for _, x := range u.Roles {
		if x == r || x == Admin || (x == Operator && r == Read) {
			return true
		}
	}
	return false
}

// Tenant resolves the tenant of a request that names want ("" for none).
func (u *User) Tenant(want string) (string, error) {
	if want == "" {
		if u.Tenants[0] == "*" {
			return tenancy.Default, nil
		}
		return u.Tenants[0], nil
	}
	if slices.Contains(u.Tenants, "*") || slices.Contains(u.Tenants, want) {
		return want, nil
	}
	return "", fmt.Errorf("user %s may not act for tenant %q", u.Name, want)
}

// ErrNoCredentials and ErrBadCredentials are the two 401s.
var (
	ErrNoCredentials  = errors.New("authentication required: send a bearer token or basic auth")
	ErrBadCredentials = errors.New("invalid credentials")
)

// ErrThrottled refuses basic auth from a client address over its failed
// logins (429); the error is a *ThrottledError.
var ErrThrottled = errors.New("auth: too many failed logins from this address")

// ThrottledError is ErrThrottled with the time until the address may try
// again.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins from this address (max_login_failures_per_minute in auth:); retry in %s",
		e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// dummyHash is checked for an unknown user, so that it costs the same
// time as a wrong password.
var dummyHash = []byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3YVv1aPEZ3JK8b3T5Ts.GJa")

// Identify returns the user the Authorization header names; client is
// the address the request came from, whose failed basic-auth logins are
// counted (the zero Addr shares one count).
func (a *Authenticator) Identify(header string, client netip.Addr) (*User, error) {
	switch {
	case header == "":
		return nil, ErrNoCredentials
	case strings.HasPrefix(header, "Bearer "):
		k := sha256.Sum256([]byte(strings.TrimPrefix(header, "Bearer ")))
		if u, ok := a.byToken[k]; ok {
			return u, nil
		}
		return nil, ErrBadCredentials
	case strings.HasPrefix(header, "Basic "):
		return a.identifyBasic(header, client)
	}
	return nil, ErrBadCredentials
}

// identifyBasic checks basic credentials: from the cache of verified
// headers, else with bcrypt, if the client has failures left.
func (a *Authenticator) identifyBasic(header string, client netip.Addr) (*User, error) {
	user, pass, ok := basic(header)
	if !ok {
		return nil, ErrBadCredentials
	}
	k := sha256.Sum256([]byte(header))
	now := a.now()
	a.mu.Lock()
	v, cached := a.mu.verified[k]
	a.mu.Unlock()
	if cached && now.Before(v.until) {
		return v.u, nil
	}
	// Take a failure up front (given back on success), so that parallel
	// guesses cannot overrun the budget.
	if wait := a.takeFailure(client, now); wait > 0 {
		return nil, &ThrottledError{RetryAfter: wait}
	}
	u, known := a.byName[user]
	hash := dummyHash
	if known {
		hash = []byte(u.PasswordHash)
	}
	a.bcrypts <- struct{}{}
	err := a.compare(hash, []byte(pass))
	<-a.bcrypts
	if !known || err != nil {
		return nil, ErrBadCredentials
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.giveBackFailureLocked(client)
	if len(a.mu.verified) >= maxVerified {
		for h, v := range a.mu.verified {
			if len(a.mu.verified) >= maxVerified || !now.Before(v.until) {
				delete(a.mu.verified, h)
			}
		}
	}
	a.mu.verified[k] = verified{u: u, until: now.Add(verifiedTTL)}
	return u, nil
}

// takeFailure takes one failure from client's bucket; when there is none
// left it returns how long until there is.
func (a *Authenticator) takeFailure(client netip.Addr, now time.Time) time.Duration {
	if a.maxFailures < 0 {
		return 0
	}
	client = clientKey(client)
	per := time.Minute / time.Duration(a.maxFailures) // one failure back every per
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.mu.failures[client]
	if b == nil {
		if len(a.mu.failures) >= maxFailureAddrs {
			a.sweepFailuresLocked(now, per)
			if len(a.mu.failures) >= maxFailureAddrs {
				// NB: too many addresses failing to count them all; the
				// bcrypt slots still bound the CPU spent on them.
				return 0
			}
		}
		b = &bucket{tokens: float64(a.maxFailures), at: now}
		a.mu.failures[client] = b
	}
	b.tokens = math.Min(float64(a.maxFailures), b.tokens+float64(now.Sub(b.at))/float64(per))
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(per))
	}
	b.tokens--
	return 0
}

func (a *Authenticator) giveBackFailureLocked(client netip.Addr) {
	if b := a.mu.failures[clientKey(client)]; b != nil {
		b.tokens = math.Min(float64(a.maxFailures), b.tokens+1)
	}
}

// sweepFailuresLocked forgets the addresses whose buckets are full again.
func (a *Authenticator) sweepFailuresLocked(now time.Time, per time.Duration) {
	for k, b := range a.mu.failures {
		if b.tokens+float64(now.Sub(b.at))/float64(per) >= float64(a.maxFailures) {
			delete(a.mu.failures, k)
		}
	}
}

// clientKey is the address failures are counted under: the IPv4
// address, or the IPv6 /64.
func clientKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

func basic(header string) (user, pass string, ok bool) {
	dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(header, "Basic "))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(dec), ":")
}

// ErrForbidden wraps every refusal of an authenticated user: a role the
// endpoint needs and the user lacks, or a tenant the user may not act for.
var ErrForbidden = errors.New("auth: forbidden")

// Authorize checks that the request's credentials carry role need and
// binds the request to a tenant the user may act for (setting the tenant
// header). It returns an error wrapping ErrNoCredentials or
// ErrBadCredentials (401), ErrThrottled (429) or ErrForbidden (403); the
// caller answers it.
func (a *Authenticator) Authorize(ctx *fasthttp.RequestCtx, need Role) error {
	if need == Public {
		return nil
	}
	client, _ := netip.AddrFromSlice(ctx.RemoteIP())
	u, err := a.Identify(string(ctx.Request.Header.Peek("Authorization")), client)
	if err != nil {
		return err
	}
	if !u.Has(need) {
		return errkind.Mark(fmt.Errorf("user %s lacks the %s role this endpoint needs", u.Name, need), ErrForbidden)
	}
	t, err := u.Tenant(string(ctx.Request.Header.Peek(tenancy.Header)))
	if err != nil {
		return errkind.Mark(err, ErrForbidden)
	}
	ctx.Request.Header.Set(tenancy.Header, t)
	ctx.SetUserValue(userKey, u)
	return nil
}

// userKey is where Check leaves the authenticated user's name.
const userKey = "auth.user"

// UserOf is the name of the user Check authenticated for this request, or
// "" when authentication is off. Handlers record it as the actor: a client
// cannot claim to be someone else.
func UserOf(ctx *fasthttp.RequestCtx) string {
	if u := Current(ctx); u != nil {
		return u.Name
	}
	return ""
}

// Current is the user Check authenticated for this request, or nil.
func Current(ctx *fasthttp.RequestCtx) *User {
	u, _ := ctx.UserValue(userKey).(*User)
	return u
}

// HashToken returns the hex SHA-256 of a token, for token_sha256.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// HashPassword returns a bcrypt hash, for password_hash.
func HashPassword(p string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.DefaultCost)
	return string(b), err
}
