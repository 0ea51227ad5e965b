//go:build e2e

package test

import (
	"testing"

	"github.com/estuary-media/estuary/test/harness"
)

// browserNode is the server the browser tests talk to.
type browserNode struct {
	httpURL string // http://127.0.0.1:PORT (pages, WHIP, WHEP)
	srsPort int    // the SRS API listener's port (webrtc://127.0.0.1:PORT/app/stream)
}

// startBrowserNode starts a standalone estuary with the SRS API on its own free port.
func startBrowserNode(t *testing.T) browserNode {
	t.Helper()
	n := harness.StartNode(t, harness.NodeOptions{SRSAPI: true})
	return browserNode{httpURL: n.HTTPURL, srsPort: n.SRSAPIPort}
}
