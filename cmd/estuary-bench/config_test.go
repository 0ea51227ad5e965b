package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTargetURL(t *testing.T) {
	cases := []struct {
		name, given, def, want string
		wantErr                bool
	}{
		{name: "off", given: "", def: "/whep/{stream}", want: ""},
		{name: "estuary base", given: "http://127.0.0.1:8080", def: "/whep/{stream}", want: "http://127.0.0.1:8080/whep/live/test"},
		{name: "base with slash", given: "http://127.0.0.1:8080/", def: "/{stream}.flv", want: "http://127.0.0.1:8080/live/test.flv"},
		{name: "mediamtx template", given: "http://127.0.0.1:8889/{path}/whep", def: "/whep/{stream}", want: "http://127.0.0.1:8889/live/test/whep"},
		{name: "app and name", given: "http://h/{app}/x/{name}.m3u8", def: "", want: "http://h/live/x/test.m3u8"},
		{name: "full url kept", given: "http://h:1/rtc/v1/whip-play/?app=live&stream=test", def: "/whep/{stream}", want: "http://h:1/rtc/v1/whip-play/?app=live&stream=test"},
		{name: "rtmp base", given: "rtmp://127.0.0.1:1935", def: "/{stream}", want: "rtmp://127.0.0.1:1935/live/test"},
		{name: "relative", given: "/whep/live/test", def: "", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := targetURL(c.given, "live/test", c.def)
			if c.wantErr {
				require.ErrorIs(t, err, ErrUsage)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, c config)
	}{
		{name: "per-kind override", args: []string{"-whep", "http://h", "-flv", "http://h", "-n", "5", "-n-flv", "7"},
			check: func(t *testing.T, c config) {
				require.Equal(t, 5, c.nWHEP)
				require.Equal(t, 7, c.nFLV)
			}},
		{name: "no target", args: []string{"-n", "3"}, wantErr: true},
		{name: "bad stream", args: []string{"-whep", "http://h", "-stream", "nokey"}, wantErr: true},
		{name: "zero duration", args: []string{"-whep", "http://h", "-duration", "0s"}, wantErr: true},
		{name: "stray argument", args: []string{"-whep", "http://h", "extra"}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseFlags(c.args)
			if c.wantErr {
				require.ErrorIs(t, err, ErrUsage)
				return
			}
			require.NoError(t, err)
			c.check(t, cfg)
		})
	}
}

func TestIsLoopback(t *testing.T) {
	require.True(t, isLoopback("http://127.0.0.1:8080/x"))
	require.True(t, isLoopback("http://127.0.0.5/x"))
	require.True(t, isLoopback("http://localhost:1/"))
	require.True(t, isLoopback("http://[::1]:1/"))
	require.False(t, isLoopback("http://10.0.0.1/"))
	require.False(t, isLoopback("http://example.com/"))
}
