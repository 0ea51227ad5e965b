package signaling

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// TestTWCCFeedbackToPublisher: a publisher that stamps transport-wide sequence numbers (as browsers
// do) gets transport-cc feedback from the server; with NoTWCC it gets none.
func TestTWCCFeedbackToPublisher(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noTWCC bool
	}{{"on", false}, {"off", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, sfu.Config{}, func(rc *rtc.Config, _ *Config) { rc.NoTWCC = tc.noTWCC })
			me := &webrtc.MediaEngine{}
			require.NoError(t, me.RegisterDefaultCodecs())
			ir := &interceptor.Registry{}
			require.NoError(t, webrtc.ConfigureTWCCHeaderExtensionSender(me, ir))
			se := webrtc.SettingEngine{}
			se.SetIncludeLoopbackCandidate(true)
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
			se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
			pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
				webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
			require.NoError(t, err)
			defer pc.Close()
			track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
			require.NoError(t, err)
			sender, err := pc.AddTrack(track)
			require.NoError(t, err)
			var feedback atomic.Int32
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					pkts, _, err := sender.ReadRTCP()
					if err != nil {
						return
					}
					for _, p := range pkts {
						if _, ok := p.(*rtcp.TransportLayerCC); ok {
							feedback.Add(1)
						}
					}
				}
			}()
			negotiateWHIPOrWHEP(t, e, "/whip/live/twcc", pc)
			stop := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(33 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						_ = track.WriteSample(media.Sample{Data: []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, Duration: time.Second / 30})
					}
				}
			}()
			time.Sleep(1500 * time.Millisecond)
			close(stop)
			got := feedback.Load()
			t.Logf("transport-cc feedback packets in 1.5 s: %d (answer has transport-cc: %v)", got, containsTWCC(pc.CurrentRemoteDescription().SDP))
			if tc.noTWCC {
				require.Zero(t, got)
				require.False(t, containsTWCC(pc.CurrentRemoteDescription().SDP))
			} else {
				require.Positive(t, got)
			}
			require.NoError(t, pc.Close())
			wg.Wait()
		})
	}
}

func containsTWCC(sdp string) bool {
	return strings.Contains(sdp, "transport-cc") || strings.Contains(sdp, "transport-wide-cc")
}
