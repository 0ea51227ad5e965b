//go:build e2e

package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// browserPublish opens /publish.html for key with codec and waits until the page says live.
func browserPublish(t *testing.T, b *harness.Browser, httpURL, key, codec string) *harness.BrowserPage {
	t.Helper()
	pub := b.NewPage()
	require.NoError(t, pub.Open(fmt.Sprintf("%s/publish.html?stream=%s&codec=%s&autostart=1&audio=raw", httpURL, key, codec)))
	took, err := pub.WaitFor(`window.estuary.state === 'live'`, 10*time.Second)
	require.NoError(t, err)
	t.Logf("%s: publisher live after %v", codec, took.Round(time.Millisecond))
	// The encoder really produces the chosen codec.
	_, err = pub.WaitFor(`(window.estuary.stats && window.estuary.stats.outbound.video && window.estuary.stats.outbound.video.framesEncoded > 10)`, 10*time.Second)
	require.NoError(t, err)
	st, err := pub.Stats("window.estuary.session.pc")
	require.NoError(t, err)
	require.Equal(t, "video/"+codec, st.OutVideo.Codec)
	require.Equal(t, "audio/opus", st.OutAudio.Codec)
	return pub
}

// browserPlayChecks waits for the player page to decode >= 60 frames within 15 s of starting, then
// measures the received audio with a WebAudio analyser (440 Hz ± 20 Hz) and returns the figures.
func browserPlayChecks(t *testing.T, player *harness.BrowserPage, codec string) {
	t.Helper()
	took, err := player.WaitFor(`window.estuary.session && window.estuary.stats && window.estuary.stats.inbound.video && window.estuary.stats.inbound.video.framesDecoded >= 60`, 15*time.Second)
	require.NoError(t, err, "the player must decode 60 frames within 15 s")
	st, err := player.Stats("window.estuary.session.pc")
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.InVideo.FramesDecoded, int64(60))
	require.Equal(t, "video/"+codec, st.InVideo.Codec)
	require.Equal(t, "audio/opus", st.InAudio.Codec)
	var ttff float64
	require.NoError(t, player.Eval(`window.estuary.firstFrameMs`, &ttff))

	tone, err := player.AudioTone("window.estuary.session.stream", 2*time.Second)
	require.NoError(t, err)
	t.Logf("%s via %s: %d frames decoded (%dx%d, %.0f fps, %d lost, jitter buffer %.0f ms) %v after Play; first frame %.0f ms; audio %.1f Hz at %.1f dBFS (signal in %d of %d analyser reads after %.0f ms)",
		codec, st.RemoteCandidateType, st.InVideo.FramesDecoded, st.InVideo.Width, st.InVideo.Height, st.InVideo.FPS,
		st.InVideo.PacketsLost, st.InVideo.JitterBufferDelayMs, took.Round(time.Millisecond), ttff,
		tone.FrequencyHz, tone.LevelDBFS, tone.Frames, tone.Reads, tone.WarmupMs)
	require.InDelta(t, 440, tone.FrequencyHz, 20, "dominant frequency of the received audio")
	require.GreaterOrEqual(t, tone.Frames, 3, "the received audio is not silence")
	// ffmpeg's sine is at -18 dBFS; with voice processing off it arrives at about -21 dBFS.
	require.Greater(t, tone.LevelDBFS, -35.0, "the received tone is loud enough")
	require.Greater(t, st.InVideo.Width, 0)
}

// TestBrowserWHIPToWHEP is issue 3's browser check: Chromium publishes its fake camera and a 440 Hz
// tone through /publish.html (WHIP), another tab plays it through /play.html (WHEP), with H.264 and VP8
// (the cases) and VP9 and AV1 (the page's other codec choices); the H.264 stream is also
// listed by the index and played through a webrtc:// URL on the SRS API port.
func TestBrowserWHIPToWHEP(t *testing.T) {
	toneFile := harness.BrowserToneWAV(t, t.TempDir(), 440, 30)
	b := harness.NewBrowser(t, harness.BrowserOptions{FakeAudioFile: toneFile})
	node := startBrowserNode(t)

	for _, codec := range []string{"H264", "VP8", "VP9", "AV1"} {
		t.Run(codec, func(t *testing.T) {
			key := "live/browser-" + strings.ToLower(codec)
			pub := browserPublish(t, b, node.httpURL, key, codec)
			defer pub.Close()

			player := b.NewPage()
			defer player.Close()
			require.NoError(t, player.Open(fmt.Sprintf("%s/play.html?stream=%s&autoplay=1", node.httpURL, key)))
			browserPlayChecks(t, player, codec)
			if codec == "H264" {
				for name, page := range map[string]*harness.BrowserPage{"publish": pub, "play": player} {
					path, err := page.Screenshot(name + "-" + strings.ToLower(codec))
					require.NoError(t, err)
					t.Logf("screenshot %s", path)
				}
			}
			require.NoError(t, player.Eval(`window.estuary.stop()`, nil))

			if codec == "H264" {
				t.Run("pages from another origin with a typed server URL", func(t *testing.T) {
					// The pages served by a different origin (a static server) talk to the node through
					// its CORS headers: Location must be readable, DELETE allowed.
					other := startPagesServer(t)
					cross := b.NewPage()
					defer cross.Close()
					require.NoError(t, cross.Open(fmt.Sprintf("%s/play.html?server=%s&stream=%s&autoplay=1", other.URL, node.httpURL, key)))
					_, err := cross.WaitFor(`window.estuary.stats && window.estuary.stats.inbound.video && window.estuary.stats.inbound.video.framesDecoded >= 30`, 15*time.Second)
					require.NoError(t, err)
					var hook struct {
						URL      string
						Resource string
					}
					require.NoError(t, cross.Eval(`({url: window.estuary.url, resource: window.estuary.session.resource})`, &hook))
					require.Equal(t, node.httpURL+"/whep/"+key, hook.URL)
					require.Contains(t, hook.Resource, node.httpURL+"/n/", "Location readable cross-origin")
					var status int
					require.NoError(t, cross.Eval(`(async () => { const s = window.estuary.session; await window.estuary.stop(); return s.deleteStatus; })()`, &status))
					require.Contains(t, []int{200, 204}, status, "cross-origin DELETE")
					t.Logf("page origin %s played %s and deleted %s (%d)", other.URL, hook.URL, hook.Resource, status)
				})
				t.Run("index lists the stream", func(t *testing.T) {
					index := b.NewPage()
					defer index.Close()
					require.NoError(t, index.Open(node.httpURL+"/"))
					sel := fmt.Sprintf(`document.querySelector('#rows tr[data-key=%q]')`, key)
					_, err := index.WaitFor(sel, 5*time.Second)
					require.NoError(t, err)
					var row string
					require.NoError(t, index.Eval(sel+`.innerText`, &row))
					shot, err := index.Screenshot("index")
					require.NoError(t, err)
					t.Logf("index row: %q (screenshot %s)", row, shot)
					require.Contains(t, row, key)
					require.Contains(t, strings.ToUpper(row), "H264")
				})
				t.Run("webrtc URL through the SRS API", func(t *testing.T) {
					srs := b.NewPage()
					defer srs.Close()
					url := fmt.Sprintf("webrtc://127.0.0.1:%d/%s", node.srsPort, key)
					require.NoError(t, srs.Open(node.httpURL+"/play.html"))
					// As a person would: type the URL into the Stream field and press Play.
					require.NoError(t, srs.Eval(fmt.Sprintf(`document.getElementById('stream').value = %q; document.getElementById('start').click()`, url), nil))
					browserPlayChecks(t, srs, codec)
					var via string
					require.NoError(t, srs.Eval(`window.estuary.via`, &via))
					require.Equal(t, "srs", via)
					path, err := srs.Screenshot("play-webrtc-url")
					require.NoError(t, err)
					t.Logf("screenshot %s (%s)", path, url)
					require.NoError(t, srs.Eval(`window.estuary.stop()`, nil))
				})
			}
			// Stop DELETEs the WHIP resource (Location of the 201): record what the page's fetch does.
			require.NoError(t, pub.Eval(`(() => { window.deletes = []; const f = window.fetch;
				window.fetch = async (u, o) => { const r = await f(u, o); if (o && o.method === 'DELETE') window.deletes.push({url: String(u), status: r.status}); return r; }; })()`, nil))
			require.NoError(t, pub.Eval(`window.estuary.stop()`, nil))
			var state string
			require.NoError(t, pub.Eval(`window.estuary.state`, &state))
			require.Equal(t, "stopped", state)
			var deletes []struct {
				URL    string
				Status int
			}
			require.NoError(t, pub.Eval(`window.deletes`, &deletes))
			require.Len(t, deletes, 1)
			require.Contains(t, deletes[0].URL, node.httpURL+"/n/")
			require.Contains(t, deletes[0].URL, "/whip/")
			require.Contains(t, []int{200, 204}, deletes[0].Status, "DELETE %s", deletes[0].URL)
			if codec == "H264" {
				// After Stop the key is free at once for a new publisher.
				again := b.NewPage()
				defer again.Close()
				require.NoError(t, again.Open(fmt.Sprintf("%s/publish.html?stream=%s&codec=VP8&autostart=1", node.httpURL, key)))
				took, err := again.WaitFor(`window.estuary.state === 'live' || window.estuary.state === 'error'`, 10*time.Second)
				require.NoError(t, err)
				var hook struct{ State, Error string }
				require.NoError(t, again.Eval(`({state: window.estuary.state, error: window.estuary.error})`, &hook))
				require.Equal(t, "live", hook.State, "re-publishing right after Stop: %s", hook.Error)
				t.Logf("re-published %s %v after Stop", key, took.Round(time.Millisecond))
				require.NoError(t, again.Eval(`window.estuary.stop()`, nil))
			}
		})
	}
}
