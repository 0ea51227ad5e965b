package signaling

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// browserOffer is a trimmed Chrome WHIP offer (H.264 first, then VP8; Opus).
const browserOffer = "v=0\r\n" +
	"o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=sendonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtcp-fb:111 transport-cc\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102 103 96\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=sendonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n" +
	"a=rtpmap:103 H264/90000\r\n" +
	"a=rtcp-fb:103 nack\r\n" +
	"a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:96 VP8/90000\r\n"

func TestParseOffer(t *testing.T) {
	cases := []struct {
		name      string
		sdp       string
		wantErr   string
		wantMedia int
		video     string // first supported video codec's fmtp/mime
	}{
		{name: "browser", sdp: browserOffer, wantMedia: 2, video: "packetization-mode=1;profile-level-id=42e01f"},
		{name: "lf only", sdp: strings.ReplaceAll(browserOffer, "\r\n", "\n"), wantMedia: 2,
			video: "packetization-mode=1;profile-level-id=42e01f"},
		{name: "empty", sdp: "", wantErr: "empty body"},
		{name: "garbage", sdp: "hello world", wantErr: "v=0"},
		{name: "v only", sdp: "v=0\r\n", wantErr: "invalid SDP"},
		{name: "no media", sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", wantErr: "no media"},
		{name: "no mid", sdp: strings.Replace(browserOffer, "a=mid:0\r\n", "", 1), wantErr: "no a=mid"},
		{name: "no ufrag", sdp: strings.ReplaceAll(browserOffer, "a=ice-ufrag:abcd\r\n", ""), wantErr: "ice-ufrag"},
		{name: "no fingerprint", sdp: strings.Replace(strings.Replace(browserOffer,
			"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n", "", 1),
			"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n", "", 1),
			wantErr: "fingerprint"},
		{name: "bad rtpmap", sdp: strings.Replace(browserOffer, "a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8", 1), wantErr: "rtpmap"},
		{name: "bad pt", sdp: strings.Replace(browserOffer, "a=rtpmap:96 VP8/90000", "a=rtpmap:300 VP8/90000", 1), wantErr: "payload type"},
		{name: "bad format", sdp: strings.Replace(browserOffer, "SAVPF 102 103 96", "SAVPF 102 103 x", 1), wantErr: "payload type"},
		{name: "application only", sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n",
			wantErr: "no audio or video"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(tc.sdp)
			if tc.wantErr != "" {
				require.Error(t, err)
				require.ErrorIs(t, err, ErrBadSDP)
				require.Contains(t, err.Error(), tc.wantErr)
				require.Equal(t, http.StatusBadRequest, StatusFor(err))

				return
			}
			require.NoError(t, err)
			require.Len(t, o.media, tc.wantMedia)
			v := o.byMid("1")
			require.NotNil(t, v)
			require.Equal(t, "sendonly", v.direction)
			c, ok := v.firstSupported()
			require.True(t, ok)
			require.Equal(t, "video/H264", c.MimeType)
			require.Contains(t, c.SDPFmtpLine, tc.video)
			a := o.byMid("0")
			require.Len(t, a.codecs, 2)
			require.Equal(t, "audio/opus", a.codecs[0].MimeType)
			require.Equal(t, "audio/PCMU", a.codecs[1].MimeType)
		})
	}
}

func FuzzParseOffer(f *testing.F) {
	f.Add(browserOffer)
	f.Add(strings.ReplaceAll(browserOffer, "\r\n", "\n"))
	f.Add("v=0\r\n")
	f.Add("")
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\na=mid:0\r\na=ice-ufrag:a\r\na=ice-pwd:b\r\na=fingerprint:x\r\na=rtpmap:96 VP8/90000\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseOffer(s)
		if err != nil {
			require.ErrorIs(t, err, ErrBadSDP)

			return
		}
		require.NotEmpty(t, o.media)
		require.LessOrEqual(t, len(o.media), maxMedia)
		for _, m := range o.media {
			if m.kind == "audio" || m.kind == "video" {
				require.NotEmpty(t, m.mid)
			}
			for _, c := range m.codecs {
				require.LessOrEqual(t, uint8(c.PayloadType), uint8(127))
				require.NotZero(t, c.ClockRate)
			}
			_, _ = m.firstSupported()
		}
	})
}

const goodCand = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"

func TestParseSDPFrag(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		wantErr string
		want    sdpFrag
	}{
		{name: "trickle", body: "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=" + goodCand + "\r\na=end-of-candidates\r\n",
			want: sdpFrag{Ufrag: "EsAw", Pwd: "P2uYro0UCOQ4zxjKXaWCBui1", End: true,
				Candidates: []fragCandidate{{Mid: "0", Candidate: goodCand}}}},
		{name: "candidates only", body: "a=" + goodCand + "\na=" + goodCand + "\n",
			want: sdpFrag{Candidates: []fragCandidate{{Candidate: goodCand}, {Candidate: goodCand}}}},
		{name: "two sections", body: "m=audio 9 UDP 0\na=mid:a\na=" + goodCand + "\nm=video 9 UDP 0\na=mid:v\na=" + goodCand + "\n",
			want: sdpFrag{Candidates: []fragCandidate{{Mid: "a", Candidate: goodCand}, {Mid: "v", MLineIndex: 1, Candidate: goodCand}}}},
		{name: "ice restart", body: "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n",
			want: sdpFrag{Ufrag: "abcd", Pwd: "0123456789012345678901"}},
		{name: "empty", body: "", wantErr: "empty"},
		{name: "not sdp", body: "hello\n", wantErr: "not an SDP line"},
		{name: "ufrag without pwd", body: "a=ice-ufrag:abcd\n", wantErr: "go together"},
		{name: "short pwd", body: "a=ice-ufrag:abcd\na=ice-pwd:x\n", wantErr: "ice-pwd"},
		{name: "bad ufrag chars", body: "a=ice-ufrag:ab cd\na=ice-pwd:0123456789012345678901\n", wantErr: "ice-ufrag"},
		{name: "short candidate", body: "a=candidate:1 1 udp 1 127.0.0.1\n", wantErr: "fields"},
		{name: "bad transport", body: "a=candidate:1 1 sctp 1 127.0.0.1 5000 typ host\n", wantErr: "transport"},
		{name: "bad port", body: "a=candidate:1 1 udp 1 127.0.0.1 0 typ host\n", wantErr: "port"},
		{name: "no typ", body: "a=candidate:1 1 udp 1 127.0.0.1 5000 type host\n", wantErr: "typ"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseSDPFrag(tc.body)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrBadFragment)
				require.Contains(t, err.Error(), tc.wantErr)

				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, f)
			again, err := parseSDPFrag(f.marshal())
			require.NoError(t, err)
			require.Equal(t, f.Ufrag, again.Ufrag)
			require.Equal(t, len(f.Candidates), len(again.Candidates))
		})
	}
}

func FuzzParseSDPFrag(f *testing.F) {
	f.Add("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=" + goodCand + "\r\na=end-of-candidates\r\n")
	f.Add("a=" + goodCand + "\n")
	f.Add("m=audio 9 UDP 0\na=mid:a\na=" + goodCand + "\nm=video 9 UDP 0\na=mid:v\na=" + goodCand + "\n")
	f.Add("hello")
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		frag, err := parseSDPFrag(body)
		if err != nil {
			require.ErrorIs(t, err, ErrBadFragment)

			return
		}
		// What parsed round-trips through marshal.
		again, err := parseSDPFrag(frag.marshal())
		if len(frag.Candidates) == 0 && frag.Ufrag == "" && !frag.End {
			return // nothing to write back
		}
		require.NoError(t, err)
		require.Equal(t, frag.Ufrag, again.Ufrag)
		require.Equal(t, frag.Pwd, again.Pwd)
		require.Equal(t, frag.End, again.End)
		require.Len(t, again.Candidates, len(frag.Candidates))
		for i := range frag.Candidates {
			require.Equal(t, strings.TrimRight(frag.Candidates[i].Candidate, "\r"), again.Candidates[i].Candidate)
		}
	})
}

func TestDecodeSRSRequest(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		wantErr  error
		wantCode int
		wantKey  string
	}{
		{name: "play", body: `{"api":"http://127.0.0.1:1985/rtc/v1/play/","streamurl":"webrtc://127.0.0.1/live/test","sdp":"v=0","clientip":null}`,
			wantKey: "live/test"},
		{name: "port and query", body: `{"streamurl":"webrtc://h.example:1985/live/cam_1.a?token=x&vhost=y","sdp":"v=0","tid":"1"}`,
			wantKey: "live/cam_1.a"},
		{name: "extra fields", body: `{"streamurl":"webrtc://h/live/t","sdp":"v=0","vcodec":"h264","clientip":"1.2.3.4"}`, wantKey: "live/t"},
		{name: "malformed", body: `{"streamurl":`, wantErr: ErrBadRequest, wantCode: SRSCodeAPIBody},
		{name: "not an object", body: `[1,2]`, wantErr: ErrBadRequest, wantCode: SRSCodeAPIBody},
		{name: "trailing", body: `{"streamurl":"webrtc://h/live/t","sdp":"v=0"} {}`, wantErr: ErrBadRequest, wantCode: SRSCodeAPIBody},
		{name: "missing sdp", body: `{"streamurl":"webrtc://h/live/t"}`, wantErr: ErrMissingSDP, wantCode: SRSCodeInvalidParam},
		{name: "http scheme", body: `{"streamurl":"http://h/live/t","sdp":"v=0"}`, wantErr: ErrBadStreamURL, wantCode: SRSCodeInvalidParam},
		{name: "no host", body: `{"streamurl":"webrtc:///live/t","sdp":"v=0"}`, wantErr: ErrBadStreamURL, wantCode: SRSCodeInvalidParam},
		{name: "one segment", body: `{"streamurl":"webrtc://h/live","sdp":"v=0"}`, wantErr: ErrBadStreamURL, wantCode: SRSCodeInvalidParam},
		{name: "three segments", body: `{"streamurl":"webrtc://h/a/b/c","sdp":"v=0"}`, wantErr: ErrBadStreamURL, wantCode: SRSCodeInvalidParam},
		{name: "bad key", body: `{"streamurl":"webrtc://h/live/a..b","sdp":"v=0"}`, wantErr: sfu.ErrInvalidKey, wantCode: SRSCodeInvalidParam},
		{name: "empty", body: ``, wantErr: ErrBadRequest, wantCode: SRSCodeAPIBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			call, err := decodeSRSRequest([]byte(tc.body))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Equal(t, tc.wantCode, SRSCodeFor(err))
				require.NotEmpty(t, err.Error())

				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantKey, call.Key)
			require.NotEmpty(t, call.SDP)
		})
	}
}

func FuzzDecodeSRSRequest(f *testing.F) {
	for _, s := range []string{
		`{"api":"http://127.0.0.1:1985/rtc/v1/play/","streamurl":"webrtc://127.0.0.1/live/test","sdp":"v=0","clientip":null}`,
		`{"streamurl":"webrtc://h.example:1985/live/cam_1.a?token=x&vhost=y","sdp":"v=0","tid":"1"}`,
		`{"streamurl":`, `[1,2]`, `{"streamurl":"webrtc://h/live/t"}`, `{"streamurl":"webrtc://h/a/b/c","sdp":"v=0"}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		call, err := decodeSRSRequest(body)
		if err != nil {
			require.NotEqual(t, SRSCodeOK, SRSCodeFor(err))

			return
		}
		require.True(t, sfu.ValidKey(call.Key), call.Key)
		require.NotEmpty(t, strings.TrimSpace(call.SDP))
	})
}

func TestStatusFor(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"invalid key", sfu.ErrInvalidKey, 400},
		{"not found", sfu.ErrStreamNotFound, 404},
		{"exists", sfu.ErrPublisherExists, 409},
		{"forbidden (edge publish)", sfu.ErrForbidden, 403},
		{"bad sdp", ErrBadSDP, 400},
		{"too large", ErrTooLarge, 413},
		{"content type", ErrContentType, 415},
		{"session", ErrSessionNotFound, 404},
		{"precondition", ErrPrecondition, 412},
		{"other", errTest, 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, StatusFor(tc.err)) })
	}
}

var errTest = http.ErrAbortHandler

func TestICELinks(t *testing.T) {
	links := iceLinks(iceServersForTest())
	require.Equal(t, []string{
		`<stun:stun.example.net:3478>; rel="ice-server"`,
		`<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1700000000:u"; credential="p\"w"; credential-type="password"`,
	}, links)
}

func iceServersForTest() []webrtc.ICEServer {
	return []webrtc.ICEServer{
		{URLs: []string{"stun:stun.example.net:3478"}},
		{URLs: []string{"turn:turn.example.net:3478?transport=udp"}, Username: "1700000000:u", Credential: `p"w`},
	}
}
