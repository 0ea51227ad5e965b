package signaling

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// TestCodecMatrix publishes each video codec over WHIP (the publisher offering only that codec, as a
// browser with a codec choice does) and plays it over WHEP with pion's default codec set.
func TestCodecMatrix(t *testing.T) {
	cases := []struct {
		name     string
		mime     string
		fmtp     string
		keyframe []byte // a payload that starts a keyframe in that codec's RTP format
	}{
		{"VP8", webrtc.MimeTypeVP8, "", []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}},
		{"VP9", webrtc.MimeTypeVP9, "profile-id=0", []byte{0x08, 0x80, 0x00}},
		{"AV1", webrtc.MimeTypeAV1, "level-idx=5;profile=0;tier=0", []byte{0x18, 0x0a, 0x0b, 0x00}},
		{"H264 Main", webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
			[]byte{0x65, 0x88, 0x84, 0x00}},
		{"H265", webrtc.MimeTypeH265, "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST", []byte{0x26, 0x01, 0xaf, 0x00}},
	}
	e := newEnv(t, sfu.Config{})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.True(t, sfu.IsKeyframe(tc.mime, tc.keyframe), "test payload must be a keyframe")
			key := "live/codec" + string(rune('a'+i))
			pc, err := e.engine.NewClientPeerConnection(webrtc.Configuration{})
			require.NoError(t, err)
			defer pc.Close()
			track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: tc.mime, ClockRate: 90000, SDPFmtpLine: tc.fmtp}, "video", "pub")
			require.NoError(t, err)
			tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			require.NoError(t, err)
			var pref []webrtc.RTPCodecParameters
			for _, c := range rtc.Codecs(rtc.Config{}) {
				if strings.EqualFold(c.MimeType, tc.mime) && c.SDPFmtpLine == tc.fmtp {
					pref = append(pref, c)
				}
			}
			require.Len(t, pref, 1)
			require.NoError(t, tr.SetCodecPreferences(pref))
			offer, err := pc.CreateOffer(nil)
			require.NoError(t, err)
			gathered := webrtc.GatheringCompletePromise(pc)
			require.NoError(t, pc.SetLocalDescription(offer))
			<-gathered
			r := do(t, http.MethodPost, e.url+"/whip/"+key, "application/sdp", []byte(pc.LocalDescription().SDP))
			require.Equal(t, http.StatusCreated, r.status, r.body)
			require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: r.body}))
			st := e.hub.Stream(key)
			require.NotNil(t, st)
			require.True(t, strings.EqualFold(st.Tracks()[0].Codec().MimeType, tc.mime), st.Tracks()[0].Codec().MimeType)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(33 * time.Millisecond)
				defer tick.Stop()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(n),
						Timestamp: uint32(n * 3000)}, Payload: tc.keyframe})
				}
			}()
			defer func() { close(stop); wg.Wait() }()

			v := startWHEP(t, e, "/whep/"+key)
			start := time.Now()
			require.Eventually(t, func() bool { return v.snapshot("video").packets >= 10 }, 10*time.Second, 20*time.Millisecond)
			vs := v.snapshot("video")
			t.Logf("%s: 10 packets after %v", tc.name, time.Since(start).Round(time.Millisecond))
			require.True(t, strings.EqualFold(vs.mime, tc.mime), vs.mime)
			require.Equal(t, tc.keyframe, vs.first)
			v.requireContinuous(t)
			r = do(t, http.MethodDelete, e.url+v.res.header.Get("Location"), "", nil)
			require.Equal(t, http.StatusOK, r.status)
		})
	}
}
