//go:build e2e

package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// TestFLVPlayPage: Chromium plays HTTP-FLV through /play.html's HTTP-FLV tab (mpegts.js): decoded
// frames grow for 10 s with no fatal player error; fps, dropped frames and the latency behind live
// (media received but not yet shown) are printed.
func TestFLVPlayPage(t *testing.T) {
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/flv-page"
	harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{})
	flvWaitLive(t, node.HTTPURL+"/"+key+".flv", 10*time.Second)
	page := b.NewPage()
	require.NoError(t, page.Open(fmt.Sprintf("%s/play.html?mode=flv&stream=%s&autoplay=1", node.HTTPURL, key)))
	took, err := page.WaitFor(`window.estuary.state === 'live' && window.estuary.stats && window.estuary.stats.framesDecoded > 10`, 15*time.Second)
	require.NoError(t, err)
	var via string
	require.NoError(t, page.Eval(`window.estuary.via`, &via))
	require.Equal(t, "flv", via)
	var ttff float64
	require.NoError(t, page.Eval(`window.estuary.firstFrameMs`, &ttff))
	t.Logf("HTTP-FLV tab: playing after %v, first frame %.0f ms after Play", took.Round(time.Millisecond), ttff)
	st := hlsPlayerGrows(t, page, 10*time.Second)
	t.Logf("HTTP-FLV tab after 10 s: %.0f frames decoded, %.0f dropped, %v fps, %vx%v, %v ms behind live", st["framesDecoded"], st["framesDropped"], st["fps"], st["width"], st["height"], st["latencyMs"])
	require.NoError(t, page.Eval(`document.getElementById('tab-flv').getAttribute('aria-selected')`, &via))
	require.Equal(t, "true", via, "the HTTP-FLV tab is the selected one")
}
