package signaling

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

const testNode = "node-1"

// h264AUs are the access units (Annex B) of a 2 s, 30 fps, GOP 30 Baseline clip made by ffmpeg.
var h264AUs [][]byte

func loadH264(dir string) error {
	out := filepath.Join(dir, "clip.h264")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "2",
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0",
		"-x264-params", "keyint=30:min-keyint=30:scenecut=0", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return errors.New("ffmpeg: " + err.Error() + ": " + string(b))
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		return err
	}
	var au []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
			h264AUs = append(h264AUs, au)
			au = nil
		}
	}
	if len(h264AUs) < 30 {
		return errors.New("ffmpeg made too few frames")
	}

	return nil
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "signaling-test")
	if err != nil {
		panic("temp dir: " + err.Error()) // test setup only
	}
	if err := loadH264(dir); err != nil {
		_ = os.RemoveAll(dir)
		println("FAIL: making the H.264 clip:", err.Error())
		os.Exit(1)
	}
	_ = os.RemoveAll(dir)
	goleakMain(m)
}

// env is a signaling server on a real hub and engine, served on 127.0.0.1.
type env struct {
	hub    *sfu.Hub
	engine *rtc.Engine
	srv    *Server
	http   *httptest.Server
	url    string
}

func freePort(t testing.TB) int {
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

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SIGNALING_TEST_LOG") == "" {
		return nil
	}

	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newEnv(t testing.TB, hubCfg sfu.Config) *env { return newEnvWith(t, hubCfg, nil) }

// newEnvWith lets a test adjust the engine's and the server's config.
func newEnvWith(t testing.TB, hubCfg sfu.Config, adjust func(*rtc.Config, *Config)) *env {
	t.Helper()
	port := freePort(t)
	log := testLogger(t)
	rcfg := rtc.Config{ListenIP: "127.0.0.1", UDPPort: port, TCPPort: port, ICEServers: iceServersForTest()}
	scfg := Config{NodeID: testNode}
	if adjust != nil {
		adjust(&rcfg, &scfg)
	}
	eng, err := rtc.NewEngine(rcfg, rtc.Deps{Logger: log})
	require.NoError(t, err)
	hub := sfu.NewHub(hubCfg, sfu.Deps{Logger: log})
	writers := sfu.NewWriterPool(2) // as the app does: viewers' DownTracks drained by a pool
	srv, err := New(scfg, Deps{Hub: hub, Engine: eng, Logger: log, Writers: writers})
	require.NoError(t, err)
	mux := http.NewServeMux()
	srv.Register(mux)
	hs := httptest.NewServer(mux)
	e := &env{hub: hub, engine: eng, srv: srv, http: hs, url: hs.URL}
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		hub.Close()
		writers.Close()
		eng.Close()
	})

	return e
}

type httpResult struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, method, url, ctype string, body []byte, hdr ...string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Close = true // no keep-alive connection outlives the test
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	return httpResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// publisher is a pion WHIP client sending the H.264 clip at 30 fps and Opus every 20 ms.
type publisher struct {
	pc       *webrtc.PeerConnection
	plis     atomic.Int32 // PLIs received for the video track
	rtcpWG   sync.WaitGroup
	res      httpResult
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// newPublisherPC makes the client PeerConnection with its H.264 and Opus tracks and returns its
// complete offer (non-trickle).
func newPublisherPC(t *testing.T, e *env) (*publisher, string) {
	t.Helper()
	pc, err := e.engine.NewClientPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	h264 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	video, err := webrtc.NewTrackLocalStaticSample(h264, "video", "pub")
	require.NoError(t, err)
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "audio", "pub")
	require.NoError(t, err)
	vt, err := pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	// Like a browser whose user chose H.264: our codec first, alone.
	var pref []webrtc.RTPCodecParameters
	for _, c := range rtc.Codecs(rtc.Config{}) {
		if c.MimeType == webrtc.MimeTypeH264 && rtc.ParseFmtp(c.SDPFmtpLine)["profile-level-id"] == "42e01f" {
			pref = append(pref, c)
		}
	}
	require.Len(t, pref, 1)
	require.NoError(t, vt.SetCodecPreferences(pref))
	_, err = pc.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	p := &publisher{pc: pc, stop: make(chan struct{})}
	p.rtcpWG.Add(1)
	go func() {
		defer p.rtcpWG.Done()
		for {
			pkts, _, err := vt.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				if pli, ok := pkt.(*rtcp.PictureLossIndication); ok && pli.MediaSSRC == uint32(vt.Sender().GetParameters().Encodings[0].SSRC) {
					p.plis.Add(1)
				}
			}
		}
	}()
	p.wg.Add(2)
	go p.sendVideo(video)
	go p.sendAudio(audio)
	t.Cleanup(p.close)

	return p, pc.LocalDescription().SDP
}

func (p *publisher) sendVideo(tr *webrtc.TrackLocalStaticSample) {
	defer p.wg.Done()
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		_ = tr.WriteSample(media.Sample{Data: h264AUs[i%len(h264AUs)], Duration: time.Second / 30})
	}
}

func (p *publisher) sendAudio(tr *webrtc.TrackLocalStaticSample) {
	defer p.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	silence := []byte{0xf8, 0xff, 0xfe} // an Opus 20 ms silence frame
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		_ = tr.WriteSample(media.Sample{Data: silence, Duration: 20 * time.Millisecond})
	}
}

// close stops sending and closes the PeerConnection (no DELETE: an abrupt leave).
func (p *publisher) close() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		_ = p.pc.Close()
		p.rtcpWG.Wait()
	})
}

// startWHIP publishes to path and requires 201.
func startWHIP(t *testing.T, e *env, path string) *publisher {
	t.Helper()
	p, offer := newPublisherPC(t, e)
	p.res = do(t, http.MethodPost, e.url+path, "application/sdp", []byte(offer))
	require.Equal(t, http.StatusCreated, p.res.status, p.res.body)
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: p.res.body}))

	return p
}

// trackStats is what a viewer saw of one track.
type trackStats struct {
	packets   int
	gaps      int // sequence numbers skipped and not (yet) received late
	recovered int // skipped sequence numbers that arrived late (NACK retransmissions)
	missing   map[uint16]bool
	lastSN    uint16
	ssrc      uint32
	mime      string
	first     []byte // payload of the first packet
	firstAt   time.Time
	ssrcSeen  int // distinct SSRCs seen
}

// viewer is a WHEP client made with pion's default codecs and interceptors (not ours).
type viewer struct {
	pc      *webrtc.PeerConnection
	res     httpResult
	start   time.Time
	mu      sync.Mutex
	tracks  map[string]*trackStats // "video", "audio"
	gapLogs []string
}

func newViewerPC(t *testing.T) *webrtc.PeerConnection { return newViewerPCWith(t, nil, false) }

// newViewerPCWith makes a viewer PeerConnection (pion's default codecs and interceptors); mux, when
// set, is its ICE UDP socket; noReplay turns SRTP replay protection off (to see retransmissions of
// packets already received); first, when set, is an interceptor below the default ones (innermost).
func newViewerPCWith(t testing.TB, mux net.PacketConn, noReplay bool, first ...interceptor.Factory) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	for _, f := range first {
		ir.Add(f)
	}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(me, ir))
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.DisableSRTPReplayProtection(noReplay)
	if mux != nil {
		lf := logging.NewDefaultLoggerFactory()
		lf.DefaultLogLevel = logging.LogLevelDisabled
		se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("test-mux"), mux))
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)

	return pc
}

// negotiateWHIPOrWHEP completes pc's offer, POSTs it to path (WHIP or WHEP) and applies the answer.
func negotiateWHIPOrWHEP(t testing.TB, e *env, path string, pc *webrtc.PeerConnection) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	r := do(t, http.MethodPost, e.url+path, "application/sdp", []byte(pc.LocalDescription().SDP))
	require.Equal(t, http.StatusCreated, r.status, r.body)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: r.body}))
}

// viewerOffer adds recvonly video and audio transceivers and returns the complete offer.
func viewerOffer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered

	return pc.LocalDescription().SDP
}

func newViewer(t *testing.T) (*viewer, string) {
	t.Helper()
	v := &viewer{pc: newViewerPC(t), tracks: map[string]*trackStats{}, start: time.Now()}
	v.pc.OnTrack(v.read)
	t.Cleanup(func() { _ = v.pc.Close() })

	return v, viewerOffer(t, v.pc)
}

// startWHEP plays path and requires 201.
func startWHEP(t *testing.T, e *env, path string) *viewer {
	t.Helper()
	v, offer := newViewer(t)
	v.res = do(t, http.MethodPost, e.url+path, "application/sdp", []byte(offer))
	require.Equal(t, http.StatusCreated, v.res.status, v.res.body)
	require.NoError(t, v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: v.res.body}))

	return v
}

func (v *viewer) read(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	kind := remote.Kind().String()
	for {
		p, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		v.record(kind, remote.Codec().MimeType, p)
	}
}

func (v *viewer) record(kind, mime string, p *rtp.Packet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.tracks[kind]
	if s == nil {
		s = &trackStats{mime: mime, first: append([]byte(nil), p.Payload...), firstAt: time.Now(), ssrc: p.SSRC, ssrcSeen: 1,
			missing: map[uint16]bool{}}
		v.tracks[kind] = s
		s.lastSN = p.SequenceNumber
		s.packets++

		return
	}
	if p.SSRC != s.ssrc {
		s.ssrcSeen++
		s.ssrc = p.SSRC
	}
	s.packets++
	switch d := int16(p.SequenceNumber - s.lastSN); {
	case d == 1:
		s.lastSN = p.SequenceNumber
	case d > 1:
		for k := s.lastSN + 1; k != p.SequenceNumber; k++ {
			s.missing[k] = true
		}
		v.gapLogs = append(v.gapLogs, kind+": gap after "+itoa(int(s.lastSN))+" to "+itoa(int(p.SequenceNumber)))
		s.lastSN = p.SequenceNumber
	default: // late: a retransmission of a skipped one, or a duplicate
		if s.missing[p.SequenceNumber] {
			delete(s.missing, p.SequenceNumber)
			s.recovered++
		} else {
			v.gapLogs = append(v.gapLogs, kind+": duplicate "+itoa(int(p.SequenceNumber)))
		}
	}
	s.gaps = len(s.missing)
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}

	return append(b, byte('0'+i%10))
}

// snapshot returns a copy of a track's stats.
func (v *viewer) snapshot(kind string) trackStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.tracks[kind]; s != nil {
		c := *s
		c.missing = nil

		return c
	}

	return trackStats{}
}

// waitPackets waits until the viewer has at least n video and n/2 audio packets more than base.
func (v *viewer) waitPackets(t *testing.T, baseVideo, baseAudio, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for time.Now().Before(deadline) {
		if v.snapshot("video").packets >= baseVideo+n && v.snapshot("audio").packets >= baseAudio+n/2 {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	vs, as := v.snapshot("video"), v.snapshot("audio")
	t.Fatalf("viewer stalled: video %d (want %d), audio %d (want %d), state %s", vs.packets, baseVideo+n,
		as.packets, baseAudio+n/2, v.pc.ConnectionState())

	return 0
}

// flowing requires that the viewer still receives video and audio.
func (v *viewer) flowing(t *testing.T) {
	t.Helper()
	v.waitPackets(t, v.snapshot("video").packets, v.snapshot("audio").packets, 10, 5*time.Second)
}

// requireContinuous requires that every sequence number of the viewer's video and audio arrived
// (allowing a moment for NACK retransmissions of packets the network lost).
func (v *viewer) requireContinuous(t *testing.T) { v.requireContinuousAudioLoss(t, 0) }

// requireContinuousAudioLoss is requireContinuous allowing up to lossAllowed audio packets lost (audio
// has no NACK): for an ICE restart, where pion drops what is sent while the new pair is checked.
func (v *viewer) requireContinuousAudioLoss(t *testing.T, lossAllowed int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && (v.snapshot("video").gaps > 0 || v.snapshot("audio").gaps > 0) {
		time.Sleep(20 * time.Millisecond)
	}
	vs, as := v.snapshot("video"), v.snapshot("audio")
	v.mu.Lock()
	logs := append([]string(nil), v.gapLogs...)
	v.mu.Unlock()
	require.Zero(t, vs.gaps, "video sequence numbers missing: %v", logs)
	require.LessOrEqual(t, as.gaps, lossAllowed, "audio sequence numbers missing: %v", logs)
	if as.gaps > 0 {
		t.Logf("audio packets lost (no NACK for audio): %d", as.gaps)
	}
	if vs.recovered+as.recovered > 0 {
		t.Logf("sequence numbers recovered by NACK: video %d, audio %d (%v)", vs.recovered, as.recovered, logs)
	}
}
