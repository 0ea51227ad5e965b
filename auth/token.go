package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/estuary-media/estuary/sfu"
)

// Claims are an Estuary token's claims: sub (stream key, "*" matches any run of characters, "/"
// included), act (publish, play or *) and exp.
type Claims struct {
	Act string `json:"act"`
	jwt.RegisteredClaims
}

// maxTokenLen bounds what the parser looks at.
const maxTokenLen = 4096

// ParseToken checks raw (HS256, signed with secret, not expired at now) and returns its claims.
// Errors wrap ErrNoToken or ErrBadToken.
func ParseToken(secret []byte, raw string, now time.Time) (*Claims, error) {
	if raw == "" {
		return nil, ErrNoToken
	}
	if len(raw) > maxTokenLen {
		return nil, fmt.Errorf("%w: too long", ErrBadToken)
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("%w: no secret configured", ErrBadToken)
	}
	c := &Claims{}
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	_, err := p.ParseWithClaims(raw, c, func(*jwt.Token) (any, error) { return secret, nil })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, fmt.Errorf("%w: expired", ErrBadToken)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	return c, nil
}

// Allows reports whether the claims cover action (publish or play) on key.
func (c *Claims) Allows(action, key string) bool {
	if c.Act != "*" && c.Act != action {
		return false
	}
	return MatchKey(c.Subject, key)
}

// MatchKey matches a stream key against a pattern where "*" matches any run of characters.
func MatchKey(pattern, key string) bool {
	if pattern == "" {
		return false
	}
	// Iterative glob with backtracking to the last star: linear-ish, no recursion.
	p, k := 0, 0
	star, mark := -1, 0
	for k < len(key) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, k
			p++
		case p < len(pattern) && pattern[p] == key[k]:
			p++
			k++
		case star >= 0:
			p = star + 1
			mark++
			k = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Sign makes a token for sub and act valid for ttl from now.
func Sign(secret []byte, sub, act string, now time.Time, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", fmt.Errorf("%w: empty secret", ErrConfig)
	}
	switch act {
	case sfu.ActionPublish, sfu.ActionPlay, "*":
	default:
		return "", fmt.Errorf("%w: act %q (want publish, play or *)", ErrConfig, act)
	}
	c := Claims{Act: act, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// TokenFromQuery returns the token query parameter of a raw query or of a stream name with a query
// ("test?token=x"); empty if none.
func TokenFromQuery(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[i+1:]
	}
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if v, ok := strings.CutPrefix(kv, "token="); ok {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

// TokenFromBearer returns the token of an "Authorization: Bearer x" header value; empty if none.
func TokenFromBearer(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
