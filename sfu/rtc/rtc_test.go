package rtc

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/sfu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSupported(t *testing.T) {
	cases := []struct {
		name string
		c    webrtc.RTPCodecCapability
		want bool
	}{
		{"opus", webrtc.RTPCodecCapability{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}, true},
		{"opus wrong clock", webrtc.RTPCodecCapability{MimeType: "audio/opus", ClockRate: 8000}, false},
		{"pcmu", webrtc.RTPCodecCapability{MimeType: "audio/PCMU", ClockRate: 8000}, false},
		{"vp8", webrtc.RTPCodecCapability{MimeType: "video/VP8", ClockRate: 90000}, true},
		{"vp9 p0", webrtc.RTPCodecCapability{MimeType: "video/VP9", ClockRate: 90000, SDPFmtpLine: "profile-id=0"}, true},
		{"vp9 p2", webrtc.RTPCodecCapability{MimeType: "video/VP9", ClockRate: 90000, SDPFmtpLine: "profile-id=2"}, false},
		{"h264 cb", webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, true},
		{"h264 high level 5.2", webrtc.RTPCodecCapability{MimeType: "video/h264", ClockRate: 90000,
			SDPFmtpLine: "packetization-mode=1;profile-level-id=640034"}, true},
		{"h264 pm0", webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000,
			SDPFmtpLine: "packetization-mode=0;profile-level-id=42e01f"}, false},
		{"h264 no plid", webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000,
			SDPFmtpLine: "packetization-mode=1"}, false},
		{"h264 unknown profile", webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000,
			SDPFmtpLine: "packetization-mode=1;profile-level-id=7a001f"}, false},
		{"av1", webrtc.RTPCodecCapability{MimeType: "video/AV1", ClockRate: 90000}, true},
		{"h265", webrtc.RTPCodecCapability{MimeType: "video/H265", ClockRate: 90000, SDPFmtpLine: "profile-id=1"}, true},
		{"rtx", webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000, SDPFmtpLine: "apt=96"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Supported(tc.c))
		})
	}
}

func TestMatchCodec(t *testing.T) {
	h := func(pt webrtc.PayloadType, fmtp string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: "video/H264", ClockRate: 90000, SDPFmtpLine: fmtp}}
	}
	negotiated := []webrtc.RTPCodecParameters{
		{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/VP8", ClockRate: 90000}},
		h(102, "packetization-mode=0;profile-level-id=42e01f"),
		h(104, "packetization-mode=1;profile-level-id=42001f"),
		h(106, "packetization-mode=1;profile-level-id=42e01f"),
		h(108, "packetization-mode=1;profile-level-id=640032"),
		{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	}
	cases := []struct {
		name   string
		want   sfu.Codec
		pt     webrtc.PayloadType
		wantOK bool
	}{
		{"h264 exact", sfu.Codec{MimeType: "video/H264", Fmtp: "packetization-mode=1;profile-level-id=42e01f"}, 106, true},
		{"h264 same profile", sfu.Codec{MimeType: "video/H264", Fmtp: "packetization-mode=1;profile-level-id=64002a"}, 108, true},
		{"h264 any pm1", sfu.Codec{MimeType: "video/H264", Fmtp: "packetization-mode=1;profile-level-id=4d001f"}, 104, true},
		{"vp8", sfu.Codec{MimeType: "video/VP8"}, 96, true},
		{"opus", sfu.Codec{MimeType: "audio/opus", Fmtp: "minptime=10"}, 111, true},
		{"vp9 absent", sfu.Codec{MimeType: "video/VP9"}, 0, false},
		{"aac", sfu.Codec{MimeType: "audio/mpeg4-generic"}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := MatchCodec(negotiated, tc.want)
			require.Equal(t, tc.wantOK, ok)
			if ok {
				require.Equal(t, tc.pt, c.PayloadType)
			}
		})
	}
}

func TestParseFmtp(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"h264", "level-asymmetry-allowed=1; packetization-mode=1;Profile-Level-Id=42e01f",
			map[string]string{"level-asymmetry-allowed": "1", "packetization-mode": "1", "profile-level-id": "42e01f"}},
		{"flag", "usedtx;;x=", map[string]string{"usedtx": "", "x": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, ParseFmtp(tc.in)) })
	}
}

func FuzzParseFmtp(f *testing.F) {
	for _, s := range []string{"", "a=1;b=2", "packetization-mode=1;profile-level-id=42e01f", ";;=;", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := ParseFmtp(s)
		for k := range m {
			require.NotContains(t, k, ";")
		}
		_ = Supported(webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000, SDPFmtpLine: s})
		_, _ = MatchCodec([]webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: "video/H264", SDPFmtpLine: s}}}, sfu.Codec{MimeType: "video/H264", Fmtp: s})
	})
}

// freePort returns a port free for both UDP and TCP on 127.0.0.1 (best effort).
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		_ = l.Close()
		if err == nil {
			_ = u.Close()

			return port
		}
	}
	t.Fatal("no free port")

	return 0
}

type collector struct {
	mu   sync.Mutex
	pkts []rtp.Packet
	got  chan struct{}
	want int
}

func (c *collector) WriteRTP(p *rtp.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, *p.Clone())
	if len(c.pkts) == c.want {
		close(c.got)
	}

	return nil
}

// TestEngineLoopback: a server PeerConnection on the shared muxes sends a LocalTrack to a client
// PeerConnection, which reads it with ReadTrack: the SSRC and payload type are the binding's, the
// payloads arrive intact, writes before the binding wait for it (BindWait), and the client gets
// sender reports that count what was sent. Through pion's write path (a publisher-side
// PeerConnection, or webrtc.direct off) and through the direct path of a viewer's PeerConnection
// (direct.go: Estuary's own SRTP context, keys from the DTLS connection, batched sends).
func TestEngineLoopback(t *testing.T) {
	cases := []struct {
		name       string
		cfg        Config
		viewer     bool
		wantDirect bool
	}{
		{name: "pion path", cfg: Config{}},
		{name: "viewer direct", cfg: Config{}, viewer: true, wantDirect: true},
		{name: "viewer batched, direct off", cfg: Config{NoDirect: true}, viewer: true},
		{name: "viewer, batch off", cfg: Config{NoBatch: true}, viewer: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { testEngineLoopback(t, c.cfg, c.viewer, c.wantDirect) })
	}
}

func testEngineLoopback(t *testing.T, cfg Config, viewer, wantDirect bool) {
	port := freePort(t)
	cfg.ListenIP, cfg.UDPPort, cfg.TCPPort = "127.0.0.1", port, port
	eng, err := NewEngine(cfg, Deps{})
	require.NoError(t, err)
	defer eng.Close()
	require.Equal(t, port, eng.UDPAddr().Port)

	var (
		server *webrtc.PeerConnection
		batch  *Batch
	)
	if viewer {
		server, batch, err = eng.NewViewerPeerConnection(webrtc.Configuration{})
		require.Equal(t, cfg.NoBatch, batch == nil)
	} else {
		server, err = eng.NewPeerConnection(webrtc.Configuration{})
	}
	require.NoError(t, err)
	defer func() { _ = server.Close() }()
	client, err := eng.NewClientPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer func() { _ = client.Close() }()

	info := sfu.TrackInfo{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/VP8", ClockRate: 90000}}
	lt := NewLocalTrack(info, LocalTrackOptions{StreamID: "live_test", BindWait: 5 * time.Second, Batch: batch})
	defer lt.Close()
	_, err = client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)

	const n = 50
	col := &collector{got: make(chan struct{}), want: n}
	var (
		wg        sync.WaitGroup
		srPackets atomic.Uint32 // the latest sender report's packet count
	)
	client.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						srPackets.Store(sr.PacketCount)
					}
				}
			}
		}()
		defer wg.Done()
		_ = ReadTrack(remote, col)
	})

	offer, err := client.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(client)
	require.NoError(t, client.SetLocalDescription(offer))
	<-gathered
	require.NoError(t, server.SetRemoteDescription(*client.LocalDescription()))
	_, err = server.AddTrack(lt)
	require.NoError(t, err)
	answer, err := server.CreateAnswer(nil)
	require.NoError(t, err)
	gathered = webrtc.GatheringCompletePromise(server)
	require.NoError(t, server.SetLocalDescription(answer))
	<-gathered
	require.Contains(t, server.LocalDescription().SDP, "127.0.0.1")
	require.NoError(t, client.SetRemoteDescription(*server.LocalDescription()))

	// The first write happens before DTLS: it waits for the binding instead of dropping.
	start := time.Now()
	done := make(chan struct{})
	const total = n + 20
	go func() { // as a DownTrack would: batches of 3 (the first write waits for the binding)
		defer close(done)
		for i := 0; i < total; {
			lt.BeginBatch()
			for k := 0; k < 3 && i < total; k++ {
				h := rtp.Header{Version: 2, SequenceNumber: uint16(1000 + i), Timestamp: uint32(i * 3000), SSRC: 42,
					PayloadType: 1, Extension: true, Padding: true}
				payload := append([]byte{0x10, byte(i), 0xaa, 0xbb}, make([]byte, 1000)...)
				_, werr := lt.WriteRTP(&h, payload)
				if werr != nil {
					lt.EndBatch()
					return
				}
				i++
			}
			lt.EndBatch()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	select {
	case <-col.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no packets through the loopback connection")
	}
	t.Logf("first %d packets after %v", n, time.Since(start))
	<-done
	c, ok := lt.Codec()
	require.True(t, ok)
	col.mu.Lock()
	first := col.pkts[0]
	require.Equal(t, uint16(1000), first.SequenceNumber, "the write before the binding must not be dropped")
	require.Equal(t, uint8(c.PayloadType), first.PayloadType)
	require.NotEqual(t, uint32(42), first.SSRC)
	require.Equal(t, []byte{0x10, 0, 0xaa, 0xbb}, first.Payload[:4])
	require.Len(t, first.Payload, 1004)
	col.mu.Unlock()
	b := lt.binding.Load()
	require.NotNil(t, b)
	require.Equal(t, wantDirect, b.direct != nil, "direct path")
	require.Eventually(t, func() bool { return srPackets.Load() >= total-2 }, 3*time.Second, 20*time.Millisecond,
		"sender reports count the packets sent (got %d)", srPackets.Load())
	st := eng.SendStats()
	t.Logf("sender report: %d packets; batched: %d datagrams in %d calls", srPackets.Load(), st.Datagrams, st.Syscalls)
	if viewer && !cfg.NoBatch {
		require.Positive(t, st.Datagrams, "the writes went through the viewer's batch")
	}

	require.NoError(t, client.Close())
	require.NoError(t, server.Close())
	wg.Wait()
	// After the connection is gone the track drops without error.
	h := rtp.Header{Version: 2}
	_, err = lt.WriteRTP(&h, []byte{1})
	require.NoError(t, err)
}

func TestLocalTrackDropsUnbound(t *testing.T) {
	lt := NewLocalTrack(sfu.TrackInfo{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus"}}, LocalTrackOptions{})
	require.Equal(t, webrtc.RTPCodecTypeAudio, lt.Kind())
	require.Equal(t, "audio", lt.ID())
	require.Equal(t, "estuary", lt.StreamID())
	h := rtp.Header{}
	n, err := lt.WriteRTP(&h, []byte{1, 2, 3})
	require.NoError(t, err)
	require.Zero(t, n)
	require.False(t, WebRTCCapable(sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 44100}))
	require.True(t, WebRTCCapable(sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}))
}

func TestEngineBadConfig(t *testing.T) {
	_, err := NewEngine(Config{ListenIP: "not-an-ip"}, Deps{})
	require.ErrorIs(t, err, ErrBadConfig)
	_, err = NewEngine(Config{ListenIP: "127.0.0.1", UDPPort: freePort(t), PublicIPs: []string{"x"}}, Deps{})
	require.ErrorIs(t, err, ErrBadConfig)
}
