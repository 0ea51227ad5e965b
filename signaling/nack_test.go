package signaling

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// TestNACK: a viewer's NACK is answered with a retransmission, and a publisher whose stream has a
// hole is sent a NACK; with NoNACK neither happens.
func TestNACK(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noNACK bool
	}{{"on", false}, {"off", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, sfu.Config{}, func(rc *rtc.Config, _ *Config) { rc.NoNACK = tc.noNACK })

			// Publisher: VP8 keyframes over a TrackLocalStaticRTP, skipping sequence number 50.
			pc, err := e.engine.NewClientPeerConnection(webrtc.Configuration{})
			require.NoError(t, err)
			defer pc.Close()
			track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
			require.NoError(t, err)
			sender, err := pc.AddTrack(track)
			require.NoError(t, err)
			var nacked atomic.Int32
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
						if n, ok := p.(*rtcp.TransportLayerNack); ok {
							for _, pair := range n.Nacks {
								if pair.PacketList()[0] <= 50 && 50 <= pair.PacketList()[len(pair.PacketList())-1] {
									nacked.Add(1)
								}
							}
						}
					}
				}
			}()
			negotiateWHIPOrWHEP(t, e, "/whip/live/nack", pc)
			stop := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if n == 50 {
						continue
					}
					_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(n),
						Timestamp: uint32(n * 3000)}, Payload: []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, byte(n)}})
				}
			}()
			defer func() {
				close(stop)
				_ = pc.Close() // ends the RTCP reader
				wg.Wait()
			}()

			// Viewer: NACKs a packet it already has and expects it again.
			v := &viewer{pc: newViewerPCWith(t, nil, true), tracks: map[string]*trackStats{}, start: time.Now()}
			v.pc.OnTrack(v.read)
			defer v.pc.Close()
			v.res = do(t, http.MethodPost, e.url+"/whep/live/nack", "application/sdp", []byte(viewerOffer(t, v.pc)))
			require.Equal(t, http.StatusCreated, v.res.status, v.res.body)
			require.NoError(t, v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: v.res.body}))
			require.Eventually(t, func() bool { return v.snapshot("video").packets >= 20 }, 10*time.Second, 20*time.Millisecond)
			var ssrc uint32
			for _, rc := range v.pc.GetReceivers() {
				if rc.Track() != nil {
					ssrc = uint32(rc.Track().SSRC())
				}
			}
			require.NotZero(t, ssrc)
			want := v.snapshot("video").lastSN - 3
			nacksBefore := e.srv.NACKs()
			require.NoError(t, v.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc,
				Nacks: []rtcp.NackPair{{PacketID: want}}}}))
			dup := "video: duplicate " + itoa(int(want))
			retransmitted := func() bool {
				v.mu.Lock()
				defer v.mu.Unlock()
				for _, l := range v.gapLogs {
					if strings.HasPrefix(l, dup) {
						return true
					}
				}

				return false
			}
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) && !(retransmitted() && (tc.noNACK || nacked.Load() > 0)) {
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("viewer NACK for %d retransmitted: %v; publisher NACKed for its missing packet: %d", want, retransmitted(), nacked.Load())
			// The viewer's NACK (one packet asked for) is counted for /metrics either way.
			require.Eventually(t, func() bool { return e.srv.NACKs() >= nacksBefore+1 }, 2*time.Second, 10*time.Millisecond)
			t.Logf("NACKed packets counted: %d", e.srv.NACKs())
			if tc.noNACK {
				require.False(t, retransmitted())
				require.Zero(t, nacked.Load())
			} else {
				require.True(t, retransmitted(), "the server must resend a NACKed packet")
				require.Positive(t, nacked.Load(), "the server must NACK the publisher's missing packet")
			}
		})
	}
}

// TestNACKSharedHistory: two viewers drop different packets on purpose; their NACK generators ask
// for them and the server resends each once, byte-identical, from the video track's one
// retransmission history (no pion responder: the viewers get exactly what the DownTracks count).
func TestNACKSharedHistory(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	vp8Publisher(t, e, "/whip/live/rtx", 1000, 5*time.Millisecond)
	require.Eventually(t, func() bool { return e.hub.Stream("live/rtx") != nil }, 5*time.Second, 10*time.Millisecond)
	const want = 20
	ds := []*dropper{{every: 5, skip: 10, limit: want}, {every: 7, skip: 10, limit: want}}
	var got [2]atomic.Int64
	for i, d := range ds {
		d.dropped = map[uint16]rtp.Packet{}
		pc := newDroppingViewerPC(t, d)
		defer pc.Close()
		playVideo(t, e, "/whep/live/rtx", pc, &got[i])
	}
	ok := func() bool {
		for _, d := range ds {
			if n, again, _ := d.counts(); n < want || again < n {
				return false
			}
		}
		return true
	}
	require.Eventually(t, ok, 15*time.Second, 20*time.Millisecond, "each viewer drops %d and gets them again", want)
	var track *sfu.Track
	for _, tr := range e.hub.Stream("live/rtx").Tracks() {
		if tr.ID() == "video" {
			track = tr
		}
	}
	require.NotNil(t, track)
	// What the viewers got again is exactly what the DownTracks resent (a pion responder would
	// answer too: twice as many).
	var dropped, again int
	var st sfu.WriterStats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		dropped, again = 0, 0
		for _, d := range ds {
			n, a, diff := d.counts()
			require.Empty(t, diff, "retransmissions must equal the packets dropped")
			dropped += n
			again += a
		}
		st = track.WriterStats()
		if uint64(again) == st.Retransmitted && again >= dropped {
			break
		}
	}
	require.Equal(t, st.Retransmitted, uint64(again), "the viewers got again what the DownTracks resent, no more")
	require.GreaterOrEqual(t, again, dropped)
	t.Logf("viewers received %d and %d packets; dropped %d in all, received again %d; DownTracks: %+v; NACKed packets counted %d",
		got[0].Load(), got[1].Load(), dropped, again, st, e.srv.NACKs())
	require.GreaterOrEqual(t, e.srv.NACKs(), uint64(dropped))
}
