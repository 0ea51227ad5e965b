package cascade

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

var trackListCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"three tracks", `{"key":"live/a","node_id":"o1","tracks":[{"id":"video","kind":"video","mime_type":"video/H264","clock_rate":90000,"fmtp":"packetization-mode=1"},{"id":"aac","kind":"audio","mime_type":"audio/mpeg4-generic","clock_rate":44100,"channels":2,"fmtp":"config=1210"},{"id":"audio","kind":"audio","mime_type":"audio/opus","clock_rate":48000,"channels":2}]}`, true},
	{"webrtc variant", `{"key":"live/a","tracks":[{"id":"video","kind":"video","mime_type":"video/H264","clock_rate":90000},{"id":"video-webrtc","kind":"video","mime_type":"video/H264","clock_rate":90000,"variant":"webrtc"}]}`, true},
	{"bad variant", `{"key":"live/a","tracks":[{"id":"v","kind":"video","mime_type":"video/VP8","clock_rate":90000,"variant":"a b"}]}`, false},
	{"no node id", `{"key":"live/a","tracks":[{"id":"v","kind":"video","mime_type":"video/VP8","clock_rate":90000}]}`, true},
	{"not json", `{"key":`, false},
	{"bad key", `{"key":"live","tracks":[{"id":"v","kind":"video","mime_type":"video/VP8","clock_rate":90000}]}`, false},
	{"bad node id", `{"key":"live/a","node_id":"a b","tracks":[{"id":"v","kind":"video","mime_type":"video/VP8","clock_rate":90000}]}`, false},
	{"no tracks", `{"key":"live/a","tracks":[]}`, false},
	{"bad kind", `{"key":"live/a","tracks":[{"id":"v","kind":"data","mime_type":"video/VP8","clock_rate":90000}]}`, false},
	{"kind and mime disagree", `{"key":"live/a","tracks":[{"id":"v","kind":"audio","mime_type":"video/VP8","clock_rate":90000}]}`, false},
	{"mime without slash", `{"key":"live/a","tracks":[{"id":"v","kind":"video","mime_type":"VP8","clock_rate":90000}]}`, false},
	{"no clock rate", `{"key":"live/a","tracks":[{"id":"v","kind":"video","mime_type":"video/VP8"}]}`, false},
	{"duplicate id", `{"key":"live/a","tracks":[{"id":"v","kind":"video","mime_type":"video/VP8","clock_rate":90000},{"id":"v","kind":"audio","mime_type":"audio/opus","clock_rate":48000}]}`, false},
	{"empty id", `{"key":"live/a","tracks":[{"id":"","kind":"video","mime_type":"video/VP8","clock_rate":90000}]}`, false},
	{"control char in fmtp", `{"key":"live/a","tracks":[{"id":"v","kind":"video","mime_type":"video/VP8","clock_rate":90000,"fmtp":"a\r\nb"}]}`, false},
}

func TestDecodeTrackList(t *testing.T) {
	for _, tc := range trackListCases {
		t.Run(tc.name, func(t *testing.T) {
			key, _, infos, err := DecodeTrackList([]byte(tc.in))
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidTrackList)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "live/a", key)
			require.NotEmpty(t, infos)
		})
	}
}

func TestTrackListRoundTrip(t *testing.T) {
	b, err := EncodeTrackList("live/test", "origin-a", relayTestTracks)
	require.NoError(t, err)
	key, node, infos, err := DecodeTrackList(b)
	require.NoError(t, err)
	require.Equal(t, "live/test", key)
	require.Equal(t, "origin-a", node)
	require.Equal(t, relayTestTracks, infos)
	// The relay registers each codec once, payload types from 96 in track order.
	cs := relayCodecs(append(infos, infos[2]))
	require.Len(t, cs, 3)
	require.EqualValues(t, 96, cs[0].PayloadType)
	require.Equal(t, "audio/mpeg4-generic", cs[1].MimeType)
}

func FuzzDecodeTrackList(f *testing.F) {
	for _, tc := range trackListCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		key, node, infos, err := DecodeTrackList(b)
		if err != nil {
			return
		}
		require.True(t, sfu.ValidKey(key))
		// What decodes re-encodes and decodes to the same.
		again, err := EncodeTrackList(key, node, infos)
		require.NoError(t, err)
		k2, n2, i2, err := DecodeTrackList(again)
		require.NoError(t, err)
		require.Equal(t, key, k2)
		require.Equal(t, node, n2)
		require.Equal(t, infos, i2)
		_ = relayCodecs(infos)
	})
}
