package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

var testNow = time.Unix(1_800_000_000, 0)

func mustSign(t testing.TB, secret, sub, act string, ttl time.Duration) string {
	tok, err := Sign([]byte(secret), sub, act, testNow, ttl)
	require.NoError(t, err)
	return tok
}

func TestParseTokenTable(t *testing.T) {
	none := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Act: "*", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "*", ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour))}})
	noneTok, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Act: "*", RegisteredClaims: jwt.RegisteredClaims{Subject: "*"}}).SignedString([]byte("s"))
	require.NoError(t, err)
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, Claims{Act: "*", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "*", ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour))}}).SignedString([]byte("s"))
	require.NoError(t, err)

	tests := []struct {
		name    string
		token   string
		action  string
		key     string
		wantErr error // nil = allowed
	}{
		{"valid publish", mustSign(t, "s", "live/test", "publish", time.Hour), "publish", "live/test", nil},
		{"valid play wildcard act", mustSign(t, "s", "live/test", "*", time.Hour), "play", "live/test", nil},
		{"wildcard sub", mustSign(t, "s", "live/*", "play", time.Hour), "play", "live/other", nil},
		{"star everything", mustSign(t, "s", "*", "*", time.Hour), "publish", "a/b", nil},
		{"other stream", mustSign(t, "s", "live/other", "publish", time.Hour), "publish", "live/test", sfu.ErrForbidden},
		{"other action", mustSign(t, "s", "live/test", "play", time.Hour), "publish", "live/test", sfu.ErrForbidden},
		{"expired", mustSign(t, "s", "live/test", "publish", -time.Minute), "publish", "live/test", sfu.ErrUnauthorized},
		{"bad secret", mustSign(t, "other", "live/test", "publish", time.Hour), "publish", "live/test", sfu.ErrUnauthorized},
		{"empty", "", "publish", "live/test", sfu.ErrUnauthorized},
		{"garbage", "a.b.c", "publish", "live/test", sfu.ErrUnauthorized},
		{"alg none", noneTok, "publish", "live/test", sfu.ErrUnauthorized},
		{"no exp", noExp, "publish", "live/test", sfu.ErrUnauthorized},
		{"hs512 refused", hs512, "publish", "live/test", sfu.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseToken([]byte("s"), tc.token, testNow)
			if err == nil && !c.Allows(tc.action, tc.key) {
				err = ErrTokenScope
			}
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			if errors.Is(tc.wantErr, sfu.ErrUnauthorized) {
				require.NotErrorIs(t, err, sfu.ErrForbidden)
			}
		})
	}
}

func TestMatchKey(t *testing.T) {
	tests := []struct {
		name, pattern, key string
		want               bool
	}{
		{"exact", "live/test", "live/test", true},
		{"exact miss", "live/test", "live/test2", false},
		{"prefix star", "live/*", "live/x", true},
		{"star crosses slash", "*", "call/room", true},
		{"middle star", "live/cam*-hd", "live/cam12-hd", true},
		{"middle star miss", "live/cam*-hd", "live/cam12-sd", false},
		{"two stars", "*/*", "a/b", true},
		{"empty pattern", "", "a/b", false},
		{"star empty run", "live/test*", "live/test", true},
		{"backtrack", "a*b*c", "aXbYbZc", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, MatchKey(tc.pattern, tc.key))
		})
	}
}

func TestTokenFrom(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"stream name", "test?token=abc", "abc"},
		{"raw query", "a=1&token=x.y.z&b=2", "x.y.z"},
		{"escaped", "token=a%2Eb", "a.b"},
		{"none", "test", ""},
		{"other param", "test?tok=1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, TokenFromQuery(tc.in)) })
	}
	require.Equal(t, "abc", TokenFromBearer("Bearer abc"))
	require.Equal(t, "abc", TokenFromBearer("bearer  abc"))
	require.Equal(t, "", TokenFromBearer("Basic abc"))
}

func FuzzParseToken(f *testing.F) {
	f.Add(mustSign(f, "s", "live/test", "publish", time.Hour), "live/test", "live/*")
	f.Add(mustSign(f, "s", "*", "*", -time.Hour), "a/b", "*")
	f.Add("a.b.c", "x", "a*b*c")
	f.Add("", "", "")
	f.Add("eyJhbGciOiJub25lIn0.e30.", "live/x", "**")
	f.Fuzz(func(t *testing.T, raw, key, pattern string) {
		c, err := ParseToken([]byte("s"), raw, testNow)
		if err != nil {
			require.ErrorIs(t, err, sfu.ErrUnauthorized)
			require.Nil(t, c)
		} else {
			require.True(t, c.ExpiresAt != nil && c.ExpiresAt.After(testNow))
			_ = c.Allows("play", key)
		}
		// MatchKey: "*" matches everything, and a pattern matches its own text with the stars removed
		// (a star may match an empty run).
		require.True(t, MatchKey("*", key))
		if len(pattern) > 0 && len(pattern) < 64 {
			lit := strings.ReplaceAll(pattern, "*", "")
			require.True(t, MatchKey(pattern, lit), "pattern %q vs %q", pattern, lit)
		}
	})
}
