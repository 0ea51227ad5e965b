//go:build e2e

package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/test/harness"
)

// rtmpViewer is a pion WHEP client that keeps every packet it receives (with its arrival time).
type rtmpViewer struct {
	pc        *webrtc.PeerConnection
	connected time.Time
	mu        sync.Mutex
	pkts      map[string][]rtmpRecv // by kind
	mime      map[string]string
}

type rtmpRecv struct {
	at  time.Time
	pkt *rtp.Packet
}

// rtmpWHEP plays key from node over WHEP, retrying until the stream exists.
func rtmpWHEP(t *testing.T, node *harness.Node, key string) *rtmpViewer {
	t.Helper()
	v := &rtmpViewer{pkts: map[string][]rtmpRecv{}, mime: map[string]string{}}
	v.pc, v.connected = whepDial(t, node, key, v.read)
	return v
}

// whepDial plays key from node with a pion WHEP viewer (recvonly video and audio, loopback UDP only,
// pion's default codecs and interceptors), retrying for 10 s until the stream exists, and returns
// once the PeerConnection is connected. onTrack receives the tracks; the PeerConnection is closed at
// cleanup.
func whepDial(t *testing.T, node *harness.Node, key string, onTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)) (*webrtc.PeerConnection, time.Time) {
	t.Helper()
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(me, ir))
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	deadline := time.Now().Add(10 * time.Second)
	for {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		require.NoError(t, err)
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
			require.NoError(t, err)
		}
		pc.OnTrack(onTrack)
		offer, err := pc.CreateOffer(nil)
		require.NoError(t, err)
		gathered := webrtc.GatheringCompletePromise(pc)
		require.NoError(t, pc.SetLocalDescription(offer))
		<-gathered
		resp, err := http.Post(node.HTTPURL+"/whep/"+key, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			connected := make(chan struct{})
			var once sync.Once
			pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
				if s == webrtc.PeerConnectionStateConnected {
					once.Do(func() { close(connected) })
				}
			})
			start := time.Now()
			require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}))
			t.Cleanup(func() { _ = pc.Close() })
			select {
			case <-connected:
				t.Logf("WHEP %s connected in %v", key, time.Since(start).Round(time.Millisecond))
				return pc, time.Now()
			case <-time.After(10 * time.Second):
				t.Fatalf("WHEP %s: not connected within 10s", key)
			}
		}
		_ = pc.Close()
		require.True(t, time.Now().Before(deadline), "WHEP %s: %d %s", key, resp.StatusCode, body)
		time.Sleep(200 * time.Millisecond)
	}
}

func (v *rtmpViewer) read(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	kind := tr.Kind().String()
	v.mu.Lock()
	v.mime[kind] = tr.Codec().MimeType
	v.mu.Unlock()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		v.mu.Lock()
		v.pkts[kind] = append(v.pkts[kind], rtmpRecv{at: time.Now(), pkt: p})
		v.mu.Unlock()
	}
}

func (v *rtmpViewer) packets(kind string) []rtmpRecv {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]rtmpRecv(nil), v.pkts[kind]...)
}

// rtmpStreamTracks reads the API's tracks of key.
func rtmpStreamTracks(t *testing.T, node *harness.Node, key string) []map[string]any {
	t.Helper()
	code, body, err := node.Get(context.Background(), "/api/v1/streams/"+key)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, string(body))
	var reply struct {
		Stream struct {
			Tracks []map[string]any `json:"tracks"`
		} `json:"stream"`
	}
	require.NoError(t, json.Unmarshal(body, &reply), string(body))
	return reply.Stream.Tracks
}

func TestRTMPE2EFFmpegToWHEP(t *testing.T) {
	cases := []struct {
		name    string
		args    harness.FFmpegArgs
		bframes bool
	}{
		{name: "baseline with aac", args: harness.FFmpegArgs{Duration: 8 * time.Second}},
		{name: "high with b-frames", args: harness.FFmpegArgs{Duration: 8 * time.Second, Profile: "high", BFrames: 2}, bframes: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := harness.StartNode(t, harness.NodeOptions{})
			ff := harness.FFmpegPush(t, node.RTMPURL("live/test"), c.args)
			v := rtmpWHEP(t, node, "live/test")
			require.NoError(t, ff.Wait(t, 20*time.Second), ff.Stderr())

			tracks := rtmpStreamTracks(t, node, "live/test") // the stream is in its grace period

			var video map[string]any
			for _, tr := range tracks {
				if tr["id"] == "video" {
					video = tr
				}
			}
			require.NotNil(t, video, "API tracks: %v", tracks)
			require.Equal(t, "video/H264", video["mime_type"])
			require.EqualValues(t, 320, video["width"])
			t.Logf("API video track: %v", video)

			pkts := v.packets("video")
			require.NotEmpty(t, pkts)
			var d codecs.H264Packet
			var annexB []byte
			var markers []rtmpRecv
			for _, p := range pkts {
				b, err := d.Unmarshal(p.pkt.Payload)
				require.NoError(t, err)
				annexB = append(annexB, b...)
				// Timing counts once the viewer is connected and past the GOP replay burst.
				if p.pkt.Marker && p.at.Sub(v.connected) > time.Second {
					markers = append(markers, p)
				}
			}
			widths := harness.FFprobeVideoFrames(t, "h264", annexB)
			require.Greater(t, len(widths), 50)
			// Default webrtc.bframes (drop): the WHEP viewer gets the variant without B slices.
			file := t.TempDir() + "/whep.h264"
			require.NoError(t, os.WriteFile(file, annexB, 0o644))
			types := rtmpPictTypes(t, "-f", "h264", file)
			t.Logf("WHEP pictures: %v", types)
			require.Zero(t, types["B"], "no B pictures for WebRTC viewers")
			require.Positive(t, types["P"])
			require.Greater(t, len(markers), 40)
			require.Equal(t, c.bframes, video["bframes"] == true)
			// Least-squares slope of RTP time over arrival time, leaving out the last 15 frames (x264
			// flushes its lookahead in a burst when ffmpeg ends).
			fit := markers[:len(markers)-15]
			slope := rtmpSlope(fit)
			wall := fit[len(fit)-1].at.Sub(fit[0].at).Seconds()
			t.Logf("WHEP video: %d packets, %d frames decoded, RTP clock over %.2fs of wall time: slope %.3f", len(pkts), len(widths), wall, slope)
			media, _ := slope, wall
			require.InDelta(t, 1.0, media, 0.10)
		})
	}
}

// annexBUnits splits an Annex-B stream into NAL units.
func annexBUnits(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+3 <= len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 {
					end--
				}
				out = append(out, b[start:end])
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

func TestRTMPE2EEnhancedHEVCOpus(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{})
	// HEVC from ffmpeg (it cannot put HEVC in FLV: the test makes the Enhanced RTMP tags itself).
	file := t.TempDir() + "/v.hevc"
	ff := harness.FFmpegRun(t, "-f", "lavfi", "-i", "testsrc=size=352x288:rate=25", "-t", "1", "-pix_fmt", "yuv420p",
		"-c:v", "libx265", "-x265-params", "log-level=error:bframes=0", "-g", "25", "-f", "hevc", file)
	require.NoError(t, ff.Wait(t, 30*time.Second), ff.Stderr())
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	var params [][]byte
	var aus [][]byte // length-prefixed access units
	var cur []byte
	for _, n := range annexBUnits(raw) {
		typ := n[0] >> 1 & 0x3f
		if typ >= 32 && typ <= 34 && len(params) < 3 {
			params = append(params, n)
		}
		cur = binary.BigEndian.AppendUint32(cur, uint32(len(n)))
		cur = append(cur, n...)
		if typ < 32 {
			aus = append(aus, cur)
			cur = nil
		}
	}
	require.Len(t, params, 3)
	require.GreaterOrEqual(t, len(aus), 20)
	// HEVCDecoderConfigurationRecord with the VPS, SPS and PPS.
	hvcc := make([]byte, 23)
	hvcc[0], hvcc[1], hvcc[12], hvcc[21], hvcc[22] = 1, 1, 60, 0x0f, 3
	for _, p := range params {
		hvcc = append(hvcc, 0x80|p[0]>>1&0x3f, 0, 1, byte(len(p)>>8), byte(len(p)))
		hvcc = append(hvcc, p...)
	}

	client, err := gortmp.Dial("rtmp", node.RTMPAddr, &gortmp.ConnConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: "live", TCURL: "rtmp://" + node.RTMPAddr + "/live"}}))
	stream, err := client.CreateStream(nil, 4096)
	require.NoError(t, err)
	require.NoError(t, stream.Publish(&message.NetStreamPublish{PublishingName: "enhanced", PublishingType: "live"}))
	video := func(ts uint32, b []byte) {
		require.NoError(t, stream.Write(6, ts, &message.VideoMessage{Payload: bytes.NewReader(b)}))
	}
	audio := func(ts uint32, b []byte) {
		require.NoError(t, stream.Write(4, ts, &message.AudioMessage{Payload: bytes.NewReader(b)}))
	}
	opusHead := []byte("OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00")
	video(0, append([]byte{0x90, 'h', 'v', 'c', '1'}, hvcc...))
	audio(0, append([]byte{0x90, 'O', 'p', 'u', 's'}, opusHead...))

	enc, err := gopus.NewEncoder(gopus.EncoderConfig{SampleRate: 48000, Channels: 2, Application: gopus.ApplicationAudio})
	require.NoError(t, err)
	var sent [][]byte
	var v *rtmpViewer
	pcm := make([]float32, 960*2)
	out := make([]byte, 1500)
	sample := 0
	start := time.Now()
	for i := range 150 { // 3 s of 20 ms frames, pictures every 40 ms (looping the 1 s of HEVC)
		for j := range 960 {
			s := float32(0.3 * math.Sin(2*math.Pi*440*float64(sample)/48000))
			pcm[2*j], pcm[2*j+1] = s, s
			sample++
		}
		n, err := enc.Encode(pcm, out)
		require.NoError(t, err)
		frame := append([]byte(nil), out[:n]...)
		sent = append(sent, frame)
		ts := uint32(i * 20)
		audio(ts, append([]byte{0x91, 'O', 'p', 'u', 's'}, frame...))
		if i%2 == 0 {
			k := (i / 2) % len(aus)
			ft := byte(0x20)
			if k%25 == 0 {
				ft = 0x10
			}
			video(ts, append([]byte{0x80 | ft | 3, 'h', 'v', 'c', '1'}, aus[k]...))
		}
		if i == 10 {
			v = rtmpWHEP(t, node, "live/enhanced")
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
	}

	tracks := rtmpStreamTracks(t, node, "live/enhanced")
	mimes := map[string]string{}
	for _, tr := range tracks {
		mimes[tr["id"].(string)] = tr["mime_type"].(string)
	}
	t.Logf("API tracks: %v", mimes)
	require.Equal(t, "video/H265", mimes["video"])
	require.Equal(t, "audio/opus", mimes["audio"])

	got := v.packets("audio")
	t.Logf("WHEP viewer received %d Opus packets of %d sent", len(got), len(sent))
	require.Greater(t, len(got), 50)
	// Each received payload is one of the frames sent, in order, 960 ticks apart when consecutive.
	idx := bytesIndex(sent, got[0].pkt.Payload)
	require.GreaterOrEqual(t, idx, 0, "first Opus payload is not a sent frame")
	for i := 1; i < len(got) && idx+i < len(sent); i++ {
		require.Equal(t, sent[idx+i], got[i].pkt.Payload, "packet %d", i)
		require.Equal(t, uint32(960), got[i].pkt.Timestamp-got[i-1].pkt.Timestamp)
	}
}

func bytesIndex(list [][]byte, b []byte) int {
	for i, x := range list {
		if bytes.Equal(x, b) {
			return i
		}
	}
	return -1
}

// rtmpSlope fits RTP seconds (90 kHz) against arrival seconds by least squares.
func rtmpSlope(pkts []rtmpRecv) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(pkts))
	for _, p := range pkts {
		x := p.at.Sub(pkts[0].at).Seconds()
		y := float64(int32(p.pkt.Timestamp-pkts[0].pkt.Timestamp)) / 90000
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// TestRTMPE2EInstantStart: ffmpeg pushes with a 4 s GOP; a Chromium viewer joins mid-GOP through
// /play.html (WHEP) and must paint its first frame within 1.5 s of pressing Play (target 0.5 s): the
// GOP cache gives it the keyframe at once instead of making it wait for the next one.
func TestRTMPE2EInstantStart(t *testing.T) {
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	node := harness.StartNode(t, harness.NodeOptions{})
	ff := harness.FFmpegPush(t, node.RTMPURL("live/instant"), harness.FFmpegArgs{Duration: 16 * time.Second, GOP: 100, NoAudio: true,
		Extra: []string{"-x264-params", "rc-lookahead=5"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, err := node.Get(context.Background(), "/api/v1/streams/live/instant")
		require.NoError(t, err)
		if code == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "stream not live: %s", ff.Stderr())
		time.Sleep(100 * time.Millisecond)
	}
	// Live at the first keyframe; join 2 s into the 4 s GOP, twice (2 s and 6 s in).
	time.Sleep(2 * time.Second)
	for i, wait := range []time.Duration{0, 2 * time.Second} {
		time.Sleep(wait)
		page := b.NewPage()
		require.NoError(t, page.Open(node.HTTPURL+"/play.html?stream=live/instant&autoplay=1"))
		_, err := page.WaitFor(`window.estuary.firstFrameMs !== null`, 8*time.Second)
		require.NoError(t, err, "no frame painted; console: %v", page.Console())
		var ttff float64
		require.NoError(t, page.Eval(`window.estuary.firstFrameMs`, &ttff))
		t.Logf("viewer %d joined mid-GOP: first frame painted %.0f ms after Play (limit 1500 ms, target 500 ms)", i+1, ttff)
		require.Less(t, ttff, 1500.0)
		page.Close()
	}
	ff.Stop()
}

// rtmpVideoInbound is the part of Chromium's inbound-rtp video stats the B-frame measurement reads.
type rtmpVideoInbound struct {
	FramesDecoded        float64 `json:"framesDecoded"`
	FramesDropped        float64 `json:"framesDropped"`
	FreezeCount          float64 `json:"freezeCount"`
	TotalFreezesDuration float64 `json:"totalFreezesDuration"`
	JitterBufferDelay    float64 `json:"jitterBufferDelay"`
	JitterBufferEmitted  float64 `json:"jitterBufferEmittedCount"`
}

const rtmpInboundJS = `window.estuary.session.pc.getStats().then((r) => {
  let v = {};
  r.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') v = s; });
  return {framesDecoded: v.framesDecoded || 0, framesDropped: v.framesDropped || 0, freezeCount: v.freezeCount || 0,
    totalFreezesDuration: v.totalFreezesDuration || 0, jitterBufferDelay: v.jitterBufferDelay || 0,
    jitterBufferEmittedCount: v.jitterBufferEmittedCount || 0};
})`

// TestRTMPE2EBFramesChromium measures what Chromium does with an RTMP stream that has B-frames
// (x264 High, -bf 2, 25 fps, so 9 I/P pictures a second) with webrtc.bframes keep and drop, against the
// same stream without B-frames: frames decoded, freezes and jitter buffer delay over 6 s, printed.
// Measured: with B-frames kept Chromium decodes about 1 picture per second (its WebRTC H.264 decoder
// takes the decoder's reordering delay for an error and waits for the next keyframe); with drop (every
// B slice dropped, the SPS rewritten to announce no reordering) it plays every I/P picture, 9 fps with
// no freeze; the control plays 25 fps. So drop is the default, and the test holds each mode to that.
func TestRTMPE2EBFramesChromium(t *testing.T) {
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	cases := []struct {
		name, mode string
		bf         int
		minFPS     float64
	}{
		{name: "bf2 keep", mode: "keep", bf: 2, minFPS: 0.3},
		{name: "bf2 drop", mode: "drop", bf: 2, minFPS: 7},
		{name: "bf0 control", mode: "keep", minFPS: 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{"webrtc.bframes": c.mode}})
			ff := harness.FFmpegPush(t, node.RTMPURL("live/bframes"), harness.FFmpegArgs{Duration: 12 * time.Second, Profile: "high", BFrames: c.bf, GOP: 50, NoAudio: true})
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, _, err := node.Get(context.Background(), "/api/v1/streams/live/bframes")
				require.NoError(t, err)
				if code == http.StatusOK {
					break
				}
				require.True(t, time.Now().Before(deadline), "stream not live: %s", ff.Stderr())
				time.Sleep(100 * time.Millisecond)
			}
			page := b.NewPage()
			defer page.Close()
			require.NoError(t, page.Open(node.HTTPURL+"/play.html?stream=live/bframes&autoplay=1"))
			_, err := page.WaitFor(`window.estuary.firstFrameMs !== null`, 8*time.Second)
			require.NoError(t, err, "console: %v", page.Console())
			time.Sleep(time.Second)
			var a, z rtmpVideoInbound
			require.NoError(t, page.Eval(rtmpInboundJS, &a))
			const secs = 6
			time.Sleep(secs * time.Second)
			require.NoError(t, page.Eval(rtmpInboundJS, &z))
			decoded := z.FramesDecoded - a.FramesDecoded
			jb := 0.0
			if n := z.JitterBufferEmitted - a.JitterBufferEmitted; n > 0 {
				jb = (z.JitterBufferDelay - a.JitterBufferDelay) / n * 1000
			}
			t.Logf("High -bf %d, webrtc.bframes=%s: over %d s Chromium decoded %.0f frames (%.1f fps), dropped %.0f, %.0f freezes (%.0f ms frozen), jitter buffer %.0f ms",
				c.bf, c.mode, secs, decoded, decoded/secs, z.FramesDropped-a.FramesDropped, z.FreezeCount-a.FreezeCount,
				(z.TotalFreezesDuration-a.TotalFreezesDuration)*1000, jb)
			require.GreaterOrEqual(t, decoded/secs, c.minFPS)
			ff.Stop()
		})
	}
}
