// Package auth authenticates API requests (bearer tokens and basic auth
// with hashed secrets), checks the role an endpoint needs, and binds each
// request to one of the tenants its credentials allow.
//
// Roles: read (queries, listings, console), write (ingest), operator
// (incident and problem actions; includes read), admin (everything).
// Secrets are stored hashed: tokens as SHA-256 (they are long and random),
// passwords with bcrypt; `tsdb auth hash` makes both.
package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

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
	Admin    Role = "admin"
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
}

// Validate checks the users.
func (c *Config) Validate() error {
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
			case Read, Write, Operator, Admin:
			default:
				return fmt.Errorf("auth user %q: role %q (read, write, operator, admin)", u.Name, r)
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

// Authenticator checks requests against the configured users.
type Authenticator struct {
	byToken map[[sha256.Size]byte]*User
	byName  map[string]*User

	mu sync.Mutex
	ok map[[sha256.Size]byte]*User // basic credentials bcrypt already accepted
}

// New builds an Authenticator; cfg must be valid.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{byToken: map[[sha256.Size]byte]*User{}, byName: map[string]*User{}, ok: map[[sha256.Size]byte]*User{}}
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

// Identify returns the user the Authorization header names.
func (a *Authenticator) Identify(header string) (*User, error) {
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
		user, pass, ok := basic(header)
		if !ok {
			return nil, ErrBadCredentials
		}
		k := sha256.Sum256([]byte(user + "\x00" + pass))
		a.mu.Lock()
		u, cached := a.ok[k]
		a.mu.Unlock()
		if cached {
			return u, nil
		}
		u, known := a.byName[user]
		if !known {
			// Spend the same time as a wrong password.
			_ = bcrypt.CompareHashAndPassword([]byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3YVv1aPEZ3JK8b3T5Ts.GJa"), []byte(pass))
			return nil, ErrBadCredentials
		}
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pass)) != nil {
			return nil, ErrBadCredentials
		}
		a.mu.Lock()
		if len(a.ok) > 10000 {
			clear(a.ok)
		}
		a.ok[k] = u
		a.mu.Unlock()
		return u, nil
	}
	return nil, ErrBadCredentials
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
// ErrBadCredentials (401) or ErrForbidden (403); the caller answers it.
func (a *Authenticator) Authorize(ctx *fasthttp.RequestCtx, need Role) error {
	if need == Public {
		return nil
	}
	u, err := a.Identify(string(ctx.Request.Header.Peek("Authorization")))
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
