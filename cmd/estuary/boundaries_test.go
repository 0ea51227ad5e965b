package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPackageBoundaries enforces STYLE.md's layering with `go list`: sfu imports nothing of ours; sfu/*
// only sfu; each adapter (signaling, bridge, cascade, api, metrics, auth, web) only sfu/... and its own
// family, never another adapter; only cmd/ wires them together. Test files are not checked.
func TestPackageBoundaries(t *testing.T) {
	const mod = "github.com/estuary-media/estuary/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)

	family := func(pkg string) string { // "bridge/rtmp" -> "bridge", "sfu/rtc" -> "sfu/rtc"
		if strings.HasPrefix(pkg, "sfu/") {
			return pkg
		}
		first, _, _ := strings.Cut(pkg, "/")
		return first
	}
	allowed := func(from, to string) bool {
		switch {
		case from == "sfu":
			return false // the core imports nothing of ours
		case strings.HasPrefix(from, "sfu/"):
			return to == "sfu" || strings.HasPrefix(to, "sfu/")
		case strings.HasPrefix(from, "cmd/"), strings.HasPrefix(from, "test"):
			return true
		}
		// An adapter: the core, or its own family.
		return to == "sfu" || strings.HasPrefix(to, "sfu/") || family(to) == family(from)
	}

	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], mod) {
			continue
		}
		from := strings.TrimPrefix(fields[0], mod)
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			to := strings.TrimPrefix(imp, mod)
			require.True(t, allowed(from, to), "%s must not import %s (STYLE.md package boundaries)", from, to)
			checked++
		}
	}
	require.Greater(t, checked, 10, "the check saw too few internal imports to mean anything")
	t.Logf("%d internal imports checked", checked)
}
