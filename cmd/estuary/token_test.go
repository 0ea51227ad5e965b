package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/auth"
)

func TestTokenCommand(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("auth:\n  publish: token\n  secret: fromfile\n"), 0o600))
	tests := []struct {
		name   string
		args   []string
		code   int
		secret string
		stream string
		action string
		stderr string
	}{
		{name: "secret flag", args: []string{"-secret", "s1", "-stream", "live/test", "-action", "publish", "-ttl", "1h"}, secret: "s1", stream: "live/test", action: "publish"},
		{name: "config secret", args: []string{"-c", cfgPath, "-stream", "live/*", "-action", "*"}, secret: "fromfile", stream: "live/x", action: "play"},
		{name: "bad action", args: []string{"-secret", "s", "-stream", "a/b", "-action", "delete"}, code: 2, stderr: "act"},
		{name: "no secret", args: []string{"-stream", "a/b"}, code: 1, stderr: "no secret"},
		{name: "no stream", args: []string{"-secret", "s"}, code: 2, stderr: "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"token"}, tc.args...), nil, &out, &errb)
			require.Equal(t, tc.code, code, errb.String())
			require.Contains(t, errb.String(), tc.stderr)
			if tc.code != 0 {
				return
			}
			c, err := auth.ParseToken([]byte(tc.secret), strings.TrimSpace(out.String()), time.Now())
			require.NoError(t, err)
			require.True(t, c.Allows(tc.action, tc.stream))
			_, err = auth.ParseToken([]byte("other"), strings.TrimSpace(out.String()), time.Now())
			require.Error(t, err)
		})
	}
}
