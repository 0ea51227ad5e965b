package rtmp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProfileLevelID(t *testing.T) {
	cases := []struct {
		name string
		sps  []byte
		want string
	}{
		{name: "x264 constrained baseline", sps: []byte{0x67, 0x42, 0xc0, 0x0d}, want: "42e00d"},
		{name: "chrome constrained baseline", sps: []byte{0x67, 0x42, 0xe0, 0x1f}, want: "42e01f"},
		{name: "baseline", sps: []byte{0x67, 0x42, 0x00, 0x1e}, want: "42001e"},
		{name: "main", sps: []byte{0x67, 0x4d, 0x40, 0x1f}, want: "4d001f"},
		{name: "high", sps: []byte{0x67, 0x64, 0x00, 0x28}, want: "640028"},
		{name: "constrained high", sps: []byte{0x67, 0x64, 0x0c, 0x1f}, want: "640c1f"},
		{name: "level 1b", sps: []byte{0x67, 0x64, 0x00, 0x09}, want: "640009"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, profileLevelID(c.sps))
		})
	}
}

func TestStreamKey(t *testing.T) {
	cases := []struct {
		name, app, stream, tcURL, want string
	}{
		{name: "plain", app: "live", stream: "test", want: "live/test"},
		{name: "query on stream", app: "live", stream: "test?token=abc", want: "live/test"},
		{name: "query on app", app: "live?token=1", stream: "test", want: "live/test"},
		{name: "trailing slash", app: "live/", stream: "test", want: "live/test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, streamKey(c.app, c.stream))
		})
	}
	require.Equal(t, "live", appFromTCURL("rtmp://host:1935/live?x=1"))
	require.Equal(t, "", appFromTCURL("rtmp://host"))
	require.Equal(t, "rtmp://h/live?...", redactQuery("rtmp://h/live?token=secret"))
}
