package cascade

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// relayDropper sits below a puller's NACK generator and drops the first arrival of every fifth
// video packet (20 in all), recording it, and compares what comes again.
type relayDropper struct {
	interceptor.NoOp
	mu      sync.Mutex
	seen    int
	dropped map[uint64]rtp.Packet // by SSRC and sequence number
	again   int
	diff    int
}

func (d *relayDropper) NewInterceptor(string) (interceptor.Interceptor, error) { return d, nil }

func (d *relayDropper) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if !strings.HasPrefix(info.MimeType, "video/") {
		return r
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := r.Read(b, a)
			if err != nil {
				return n, attr, err
			}
			var p rtp.Packet
			if p.Unmarshal(b[:n]) != nil {
				return n, attr, nil
			}
			d.mu.Lock()
			d.seen++
			k := uint64(p.SSRC)<<16 | uint64(p.SequenceNumber)
			first, was := d.dropped[k]
			drop := !was && d.seen > 10 && p.SequenceNumber%5 == 0 && len(d.dropped) < 20
			if drop {
				p.Payload = append([]byte(nil), p.Payload...)
				d.dropped[k] = p
			} else if was {
				d.again++
				if first.SSRC != p.SSRC || first.Timestamp != p.Timestamp || first.Marker != p.Marker || !bytes.Equal(first.Payload, p.Payload) {
					d.diff++
				}
			}
			d.mu.Unlock()
			if !drop {
				return n, attr, nil
			}
		}
	})
}

func (d *relayDropper) counts() (dropped, again, diff int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.dropped), d.again, d.diff
}

// TestRelayNACK: a puller that loses video packets (of both video tracks) NACKs them and the relay
// resends each once, byte-identical, from the origin tracks' shared retransmission histories (no
// pion responder on the relay: the puller gets exactly what the relay's DownTracks count).
func TestRelayNACK(t *testing.T) {
	a := startRelayNode(t, "a", NewMemoryStore())
	const key = "live/nack"
	_, stop := publishTest(t, a.hub, key, 1000)
	defer stop()

	// A puller by hand: the relay's codecs, a dropper below pion's NACK generator, one recvonly
	// transceiver per track in order.
	me := &webrtc.MediaEngine{}
	for _, c := range relayCodecs(relayTestTracks) {
		kind := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			kind = webrtc.RTPCodecTypeAudio
		}
		require.NoError(t, me.RegisterCodec(c, kind))
	}
	d := &relayDropper{dropped: map[uint64]rtp.Packet{}}
	ir := &interceptor.Registry{}
	ir.Add(d)
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorInterval(20 * time.Millisecond))
	require.NoError(t, err)
	ir.Add(gen)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.DisableSRTPReplayProtection(true)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	var readers sync.WaitGroup
	defer func() {
		_ = pc.Close()
		readers.Wait()
	}()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		readers.Add(1)
		defer readers.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
		}
	})
	for _, in := range relayTestTracks {
		kind := webrtc.RTPCodecTypeAudio
		if in.Kind == sfu.KindVideo {
			kind = webrtc.RTPCodecTypeVideo
		}
		_, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/relay/v1/"+key, strings.NewReader(pc.LocalDescription().SDP))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+relayTestToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	answer, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(answer))
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}))

	require.Eventually(t, func() bool {
		n, again, _ := d.counts()
		return n >= 20 && again >= n
	}, 15*time.Second, 20*time.Millisecond, "the puller's dropped packets come again")
	var videos []*sfu.Track // "video" and "video-webrtc"
	for _, tr := range a.hub.Stream(key).Tracks() {
		if tr.Kind() == sfu.KindVideo {
			videos = append(videos, tr)
		}
	}
	require.Len(t, videos, 2)
	var n, again, diff int
	var st sfu.WriterStats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n, again, diff = d.counts()
		st = sfu.WriterStats{}
		for _, v := range videos {
			s := v.WriterStats()
			st.Packets += s.Packets
			st.Retransmitted += s.Retransmitted
			st.RetransmitMissed += s.RetransmitMissed
		}
		if uint64(again) == st.Retransmitted && again >= n {
			break
		}
	}
	t.Logf("puller dropped %d video packets, got %d again (%d differing); relay DownTracks: %+v", n, again, diff, st)
	require.Zero(t, diff, "retransmissions equal the packets dropped")
	require.Equal(t, st.Retransmitted, uint64(again), "the puller got again what the relay resent, no more")
}
