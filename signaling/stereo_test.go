package signaling

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithOpusStereo(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{
			name: "opus fmtp gets stereo",
			in:   "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n",
			want: "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1\r\n",
		},
		{
			name: "already stereo",
			in:   "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;stereo=1\r\n",
			want: "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;stereo=1\r\n",
		},
		{
			name: "video fmtp untouched",
			in:   "a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\n",
			want: "a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\n",
		},
		{
			name: "empty opus params",
			in:   "a=rtpmap:109 OPUS/48000/2\r\na=fmtp:109 \r\n",
			want: "a=rtpmap:109 OPUS/48000/2\r\na=fmtp:109 stereo=1;sprop-stereo=1\r\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, withOpusStereo(tc.in)) })
	}
}

func FuzzWithOpusStereo(f *testing.F) {
	f.Add("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\n")
	f.Add("a=fmtp:\r\na=rtpmap:")
	f.Fuzz(func(t *testing.T, sdp string) {
		out := withOpusStereo(sdp)
		require.Equal(t, out, withOpusStereo(out), "idempotent")
	})
}
