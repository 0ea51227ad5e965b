package hls

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

var playKeyCases = []struct {
	name, app, file, key string
	ok                   bool
}{
	{name: "plain", app: "live", file: "test.m3u8", key: "live/test", ok: true},
	{name: "dots and dashes", app: "a-b_c", file: "s.1-x.m3u8", key: "a-b_c/s.1-x", ok: true},
	{name: "no suffix", app: "live", file: "test.flv"},
	{name: "only suffix", app: "live", file: ".m3u8"},
	{name: "dot dot", app: "live", file: "...m3u8"},
	{name: "bad char", app: "live", file: "te st.m3u8"},
	{name: "empty app", app: "", file: "test.m3u8"},
	{name: "slash", app: "live", file: "a/b.m3u8"},
}

func TestPlayKey(t *testing.T) {
	for _, tc := range playKeyCases {
		t.Run(tc.name, func(t *testing.T) {
			key, err := PlayKey(tc.app, tc.file)
			if !tc.ok {
				require.ErrorIs(t, err, ErrBadPath)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.key, key)
		})
	}
}

var muxerFileCases = []struct {
	name, app, stream, file string
	ok                      bool
}{
	{name: "index", app: "live", stream: "test", file: "index.m3u8", ok: true},
	{name: "media playlist", app: "live", stream: "test", file: "main_stream.m3u8", ok: true},
	{name: "ts segment", app: "live", stream: "test", file: "0a1b2c3d4e5f_main_seg12.ts", ok: true},
	{name: "mp4 part", app: "live", stream: "test", file: "0a1b2c3d4e5f_video1_part3.mp4", ok: true},
	{name: "other extension", app: "live", stream: "test", file: "x.txt"},
	{name: "bare extension", app: "live", stream: "test", file: ".ts"},
	{name: "traversal", app: "live", stream: "test", file: "..ts"},
	{name: "bad stream", app: "live", stream: "..", file: "index.m3u8"},
	{name: "bad app", app: "li ve", stream: "x", file: "index.m3u8"},
	{name: "query chars", app: "live", stream: "test", file: "a?b.ts"},
}

func TestMuxerFile(t *testing.T) {
	for _, tc := range muxerFileCases {
		t.Run(tc.name, func(t *testing.T) {
			key, file, err := MuxerFile(tc.app, tc.stream, tc.file)
			if !tc.ok {
				require.ErrorIs(t, err, ErrBadPath)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.app+"/"+tc.stream, key)
			require.Equal(t, tc.file, file)
		})
	}
}

func FuzzPlayKey(f *testing.F) {
	for _, tc := range playKeyCases {
		f.Add(tc.app, tc.file)
	}
	f.Fuzz(func(t *testing.T, app, file string) {
		key, err := PlayKey(app, file)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error not ErrBadPath: %v", err)
			}
			return
		}
		if key+".m3u8" != app+"/"+file {
			t.Fatalf("key %q from %q %q", key, app, file)
		}
	})
}

func FuzzMuxerFile(f *testing.F) {
	for _, tc := range muxerFileCases {
		f.Add(tc.app, tc.stream, tc.file)
	}
	f.Fuzz(func(t *testing.T, app, stream, file string) {
		key, name, err := MuxerFile(app, stream, file)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error not ErrBadPath: %v", err)
			}
			return
		}
		if key != app+"/"+stream || name != file {
			t.Fatalf("got %q %q from %q %q %q", key, name, app, stream, file)
		}
		for _, c := range []byte(name) {
			if c == '/' || c == '?' || c == '%' || c == '\\' {
				t.Fatalf("file %q has %q", name, c)
			}
		}
		if len(name) >= 2 && (name == ".." || name[:2] == "..") {
			t.Fatalf("file %q", name)
		}
	})
}
