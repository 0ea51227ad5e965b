package sfu

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var keyCases = []struct {
	name string
	key  string
	ok   bool
}{
	{"simple", "live/test", true},
	{"all chars", "A-z_0.9/x-Y_1.2", true},
	{"dots inside", "live/a.b.c", true},
	{"leading dot", "live/.hidden", true},
	{"empty", "", false},
	{"no slash", "livetest", false},
	{"three parts", "live/a/b", false},
	{"empty app", "/test", false},
	{"empty stream", "live/", false},
	{"dot part", "./test", false},
	{"dotdot part", "live/..", false},
	{"dotdot inside", "live/a..b", false},
	{"space", "live/te st", false},
	{"query", "live/test?token=x", false},
	{"backslash", "live\\test", false},
	{"percent", "live/%2e%2e", false},
	{"unicode", "live/tést", false},
	{"nul", "live/te\x00st", false},
	{"long", "live/" + strings.Repeat("a", 251), true},
	{"too long", "live/" + strings.Repeat("a", 252), false},
}

func TestValidKey(t *testing.T) {
	for _, c := range keyCases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.ok, ValidKey(c.key))
		})
	}
}

func FuzzValidKey(f *testing.F) {
	for _, c := range keyCases {
		f.Add(c.key)
	}
	f.Fuzz(func(t *testing.T, key string) {
		ok := ValidKey(key)
		// Reference: the rules written plainly.
		parts := strings.Split(key, "/")
		want := len(key) <= maxKeyLen && len(parts) == 2
		for _, p := range parts {
			if p == "" || p == "." || strings.Contains(p, "..") {
				want = false
			}
			for _, c := range []byte(p) {
				if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", rune(c)) {
					want = false
				}
			}
		}
		if ok != want {
			t.Fatalf("ValidKey(%q) = %v, want %v", key, ok, want)
		}
	})
}
