package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConfigFiles loads every file in configs/ strictly and validates it.
func TestConfigFiles(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, nil)
			require.NoError(t, err)
		})
	}
}

// TestEstuaryYAMLDocumentsEveryDefault: configs/estuary.yaml, read into an empty Config, gives exactly
// the defaults (so it names every key with its default value).
func TestEstuaryYAMLDocumentsEveryDefault(t *testing.T) {
	data, err := os.ReadFile("../../configs/estuary.yaml")
	require.NoError(t, err)
	var got Config
	require.NoError(t, Parse(data, &got))
	def := Defaults()
	got.NodeID = def.NodeID // the hostname: not in the file
	want, err := def.Marshal()
	require.NoError(t, err)
	have, err := got.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(want), string(have))
	for _, k := range envKeys() {
		if k.path == "node_id" {
			continue
		}
		leaf := k.path[strings.LastIndex(k.path, ".")+1:]
		require.Contains(t, string(data), leaf+":", "configs/estuary.yaml must show %s", k.path)
	}
}

func TestDefaultsValid(t *testing.T) {
	cfg := Defaults()
	require.NoError(t, cfg.Validate())
	host, _ := os.Hostname()
	if validNodeID(host) {
		require.Equal(t, host, cfg.NodeID)
	}
}

// parseCases are TestParse's table (FuzzParse's seeds too).
var parseCases = []struct {
	name    string
	yaml    string
	wantErr string
	check   func(t *testing.T, c Config)
}{
	{name: "empty", yaml: "", check: func(t *testing.T, c Config) { require.Equal(t, "standalone", c.Role) }},
	{name: "comment only", yaml: "# nothing\n", check: func(t *testing.T, c Config) { require.Equal(t, ":8080", c.HTTP.Listen) }},
	{name: "unknown top-level key", yaml: "rolee: edge\n", wantErr: "rolee"},
	{name: "unknown section key", yaml: "http:\n  listn: :80\n", wantErr: "listn"},
	{name: "unknown section", yaml: "nope:\n  a: 1\n", wantErr: "nope"},
	{name: "duration", yaml: "sfu:\n  grace: 2500ms\n", check: func(t *testing.T, c Config) { require.Equal(t, 2500*time.Millisecond, c.SFU.Grace) }},
	{name: "integer duration refused", yaml: "sfu:\n  grace: 10\n", wantErr: "grace"},
	{name: "bad duration", yaml: "hls:\n  segment: 2x\n", wantErr: "2x"},
	{name: "on off booleans", yaml: "webrtc:\n  nack: off\n  twcc: on\nsfu:\n  takeover: on\n", check: func(t *testing.T, c Config) {
		require.False(t, c.WebRTC.NACK)
		require.True(t, c.WebRTC.TWCC)
		require.True(t, c.SFU.Takeover)
	}},
	{name: "true false booleans", yaml: "turn:\n  enabled: false\n", check: func(t *testing.T, c Config) { require.False(t, c.TURN.Enabled) }},
	{name: "bad boolean", yaml: "turn:\n  enabled: maybe\n", wantErr: "maybe"},
	{name: "string for int", yaml: "rtmp:\n  chunk_size: big\n", wantErr: "rtmp.chunk_size"},
	{name: "null keeps the default", yaml: "http:\n  srs_api_listen:\n", check: func(t *testing.T, c Config) { require.Equal(t, ":1985", c.HTTP.SRSAPIListen) }},
	{name: "empty string turns off", yaml: "http:\n  srs_api_listen: \"\"\n", check: func(t *testing.T, c Config) { require.Equal(t, "", c.HTTP.SRSAPIListen) }},
	{name: "type error names nested key", yaml: "limits:\n  max_connections:\n    rtmp: many\n", wantErr: "limits.max_connections.rtmp"},
	{name: "ice servers both forms", yaml: "webrtc:\n  ice_servers:\n    - stun:a.example:3478\n    - urls: [turn:b.example:3478]\n      username: u\n      credential: p\n", check: func(t *testing.T, c Config) {
		require.Len(t, c.WebRTC.ICEServers, 2)
		require.Equal(t, []string{"stun:a.example:3478"}, c.WebRTC.ICEServers[0].URLs)
		require.Equal(t, "u", c.WebRTC.ICEServers[1].Username)
	}},
	{name: "ice server unknown key", yaml: "webrtc:\n  ice_servers:\n    - urls: [stun:a:1]\n      user: u\n", wantErr: "user"},
	{name: "max connections", yaml: "limits:\n  max_connections:\n    rtmp: 5\n", check: func(t *testing.T, c Config) { require.Equal(t, 5, c.Limits.MaxConnections.RTMP) }},
	{name: "max connections unknown protocol", yaml: "limits:\n  max_connections:\n    srt: 5\n", wantErr: "srt"},
	{name: "hooks", yaml: "auth:\n  hooks:\n    on_publish: [http://127.0.0.1:9/p]\n", check: func(t *testing.T, c Config) {
		require.Equal(t, []string{"http://127.0.0.1:9/p"}, c.Auth.Hooks.OnPublish)
	}},
	{name: "two documents", yaml: "role: edge\n---\nrole: origin\n", wantErr: "more than one"},
	{name: "not a mapping", yaml: "- a\n- b\n", wantErr: "config"},
	{name: "unquoted star is an alias", yaml: "http:\n  cors: *\n", wantErr: "config"},
}

func TestParse(t *testing.T) {
	cases := parseCases
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			err := Parse([]byte(tc.yaml), &c)
			if tc.wantErr != "" {
				require.Error(t, err)
				require.ErrorIs(t, err, ErrConfig)
				require.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "top level", env: []string{"ESTUARY_ROLE=edge", "ESTUARY_NODE_ID=e1", "ESTUARY_CLUSTER_REDIS=redis://127.0.0.1:6379/0"}, check: func(t *testing.T, c Config) {
			require.Equal(t, "edge", c.Role)
			require.Equal(t, "e1", c.NodeID)
		}},
		{name: "duration key with underscores", env: []string{"ESTUARY_CLUSTER_WAIT_FOR_STREAM=3s", "ESTUARY_SHUTDOWN_TIMEOUT=1m"}, check: func(t *testing.T, c Config) {
			require.Equal(t, 3*time.Second, c.Cluster.WaitForStream)
			require.Equal(t, time.Minute, c.ShutdownTimeout)
		}},
		{name: "string", env: []string{"ESTUARY_HTTP_LISTEN=127.0.0.1:9999", "ESTUARY_HTTP_SRS_API_LISTEN="}, check: func(t *testing.T, c Config) {
			require.Equal(t, "127.0.0.1:9999", c.HTTP.Listen)
			require.Equal(t, "", c.HTTP.SRSAPIListen)
		}},
		{name: "int", env: []string{"ESTUARY_WEBRTC_UDP_PORT=9000", "ESTUARY_SFU_GOP_CACHE_MAX_BYTES=1024"}, check: func(t *testing.T, c Config) {
			require.Equal(t, 9000, c.WebRTC.UDPPort)
			require.Equal(t, 1024, c.SFU.GOPCacheMaxBytes)
		}},
		{name: "bools", env: []string{"ESTUARY_WEBRTC_NACK=off", "ESTUARY_SFU_TAKEOVER=on", "ESTUARY_TURN_ENABLED=false", "ESTUARY_CLUSTER_TAKEOVER=TRUE"}, check: func(t *testing.T, c Config) {
			require.False(t, c.WebRTC.NACK)
			require.True(t, c.SFU.Takeover)
			require.False(t, c.TURN.Enabled)
			require.True(t, c.Cluster.Takeover)
		}},
		{name: "list", env: []string{"ESTUARY_WEBRTC_PUBLIC_IPS=127.0.0.2, 127.0.0.3", "ESTUARY_CLUSTER_ORIGINS=a:1,b:2"}, check: func(t *testing.T, c Config) {
			require.Equal(t, []string{"127.0.0.2", "127.0.0.3"}, c.WebRTC.PublicIPs)
			require.Equal(t, []string{"a:1", "b:2"}, c.Cluster.Origins)
		}},
		{name: "empty list", env: []string{"ESTUARY_WEBRTC_PUBLIC_IPS="}, check: func(t *testing.T, c Config) { require.Empty(t, c.WebRTC.PublicIPs) }},
		{name: "ice servers list", env: []string{"ESTUARY_WEBRTC_ICE_SERVERS=stun:a:3478,stun:b:3478"}, check: func(t *testing.T, c Config) {
			require.Len(t, c.WebRTC.ICEServers, 2)
			require.Equal(t, []string{"stun:b:3478"}, c.WebRTC.ICEServers[1].URLs)
		}},
		{name: "nested", env: []string{"ESTUARY_LIMITS_MAX_CONNECTIONS_RTMP=7", "ESTUARY_AUTH_HOOKS_ON_PLAY=http://h/a,http://h/b"}, check: func(t *testing.T, c Config) {
			require.Equal(t, 7, c.Limits.MaxConnections.RTMP)
			require.Equal(t, []string{"http://h/a", "http://h/b"}, c.Auth.Hooks.OnPlay)
		}},
		{name: "unrelated variables ignored", env: []string{"ESTUARY_BIN=/x", "PATH=/bin", "ESTUARYX=1"}, check: func(t *testing.T, c Config) {
			require.Equal(t, "standalone", c.Role)
		}},
		{name: "bad bool", env: []string{"ESTUARY_WEBRTC_NACK=maybe"}, wantErr: "webrtc.nack"},
		{name: "bad int", env: []string{"ESTUARY_WEBRTC_UDP_PORT=x"}, wantErr: "webrtc.udp_port"},
		{name: "bad duration", env: []string{"ESTUARY_SFU_GRACE=10"}, wantErr: "sfu.grace"},
		{name: "env then validate", env: []string{"ESTUARY_ROLE=bogus"}, wantErr: "role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load("", tc.env)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrConfig)
				require.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

// TestEnvOverridesFile: the environment wins over the file.
func TestEnvOverridesFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(f, []byte("http:\n  listen: 127.0.0.1:1\nhls:\n  window: 9\n"), 0o644))
	c, err := Load(f, []string{"ESTUARY_HTTP_LISTEN=127.0.0.1:2"})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:2", c.HTTP.Listen)
	require.Equal(t, 9, c.HLS.Window)
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	require.ErrorIs(t, err, ErrConfig)
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		mod     func(c *Config)
		wantErr string // the key named in the error; "" = valid
	}{
		{name: "defaults", mod: func(c *Config) {}},
		{name: "bad role", mod: func(c *Config) { c.Role = "master" }, wantErr: "role"},
		{name: "bad node id", mod: func(c *Config) { c.NodeID = "a/b" }, wantErr: "node_id"},
		{name: "empty node id", mod: func(c *Config) { c.NodeID = "" }, wantErr: "node_id"},
		{name: "zero shutdown", mod: func(c *Config) { c.ShutdownTimeout = 0 }, wantErr: "shutdown_timeout"},
		{name: "bad log level", mod: func(c *Config) { c.Log.Level = "loud" }, wantErr: "log.level"},
		{name: "bad log format", mod: func(c *Config) { c.Log.Format = "xml" }, wantErr: "log.format"},
		{name: "rtmp off", mod: func(c *Config) { c.RTMP.Listen = "" }},
		{name: "bad rtmp listen", mod: func(c *Config) { c.RTMP.Listen = "1935" }, wantErr: "rtmp.listen"},
		{name: "bad port", mod: func(c *Config) { c.HTTP.Listen = ":99999" }, wantErr: "http.listen"},
		{name: "empty http listen", mod: func(c *Config) { c.HTTP.Listen = "" }, wantErr: "http.listen"},
		{name: "srs api off", mod: func(c *Config) { c.HTTP.SRSAPIListen = "" }},
		{name: "cert without key", mod: func(c *Config) { c.HTTP.TLSCert = "a.pem" }, wantErr: "http.tls_key"},
		{name: "rtmp key without cert", mod: func(c *Config) { c.RTMP.TLSKey = "k.pem" }, wantErr: "rtmp.tls_cert"},
		{name: "small chunk", mod: func(c *Config) { c.RTMP.ChunkSize = 64 }, wantErr: "rtmp.chunk_size"},
		{name: "negative message size", mod: func(c *Config) { c.RTMP.MaxMessageSize = -1 }, wantErr: "rtmp.max_message_size"},
		{name: "huge message size", mod: func(c *Config) { c.RTMP.MaxMessageSize = 1 << 25 }, wantErr: "rtmp.max_message_size"},
		{name: "bad listen ip", mod: func(c *Config) { c.WebRTC.ListenIP = "host" }, wantErr: "webrtc.listen_ip"},
		{name: "bad udp port", mod: func(c *Config) { c.WebRTC.UDPPort = -1 }, wantErr: "webrtc.udp_port"},
		{name: "bad public ip", mod: func(c *Config) { c.WebRTC.PublicIPs = []string{"127.0.0.1", "x"} }, wantErr: "webrtc.public_ips[1]"},
		{name: "bad ice url", mod: func(c *Config) { c.WebRTC.ICEServers = []ICEServer{{URLs: []string{"http://x"}}} }, wantErr: "webrtc.ice_servers[0]"},
		{name: "bad bframes", mod: func(c *Config) { c.WebRTC.BFrames = "reorder" }, wantErr: "webrtc.bframes"},
		{name: "zero keyframe interval", mod: func(c *Config) { c.WebRTC.KeyframeInterval = 0 }, wantErr: "webrtc.keyframe_interval"},
		{name: "negative grace", mod: func(c *Config) { c.SFU.Grace = -time.Second }, wantErr: "sfu.grace"},
		{name: "zero grace", mod: func(c *Config) { c.SFU.Grace = 0 }, wantErr: "sfu.grace"},
		{name: "calls sfu mode not built", mod: func(c *Config) { c.Calls.Mode = "sfu" }, wantErr: "calls.mode: sfu is not built yet"},
		{name: "negative gop bytes", mod: func(c *Config) { c.SFU.GOPCacheMaxBytes = -5 }, wantErr: "sfu.gop_cache_max_bytes"},
		{name: "turn listen bad", mod: func(c *Config) { c.TURN.Listen = "x" }, wantErr: "turn.listen"},
		{name: "turn off no listen", mod: func(c *Config) { c.TURN.Enabled = false; c.TURN.Listen = "" }},
		{name: "turn denied peers", mod: func(c *Config) { c.TURN.DeniedPeers = []string{"10.0.0.0/8", "bad"} }, wantErr: "turn.denied_peers[1]"},
		{name: "turn negative quota", mod: func(c *Config) { c.TURN.Quota = -1 }, wantErr: "turn.quota"},
		{name: "bad auth publish", mod: func(c *Config) { c.Auth.Publish = "jwt" }, wantErr: "auth.publish"},
		{name: "token without secret", mod: func(c *Config) { c.Auth.Play = "token" }, wantErr: "auth.secret"},
		{name: "token with secret", mod: func(c *Config) { c.Auth.Play = "token"; c.Auth.Secret = "s" }},
		{name: "hook without url", mod: func(c *Config) { c.Auth.Publish = "hook" }, wantErr: "auth.hooks.on_publish"},
		{name: "bad hook url", mod: func(c *Config) { c.Auth.Hooks.OnStop = []string{"ftp://x"} }, wantErr: "auth.hooks.on_stop[0]"},
		{name: "opus bitrate", mod: func(c *Config) { c.Audio.OpusBitrate = 1 }, wantErr: "audio.opus_bitrate"},
		{name: "aac bitrate", mod: func(c *Config) { c.Audio.AACBitrate = -1 }, wantErr: "audio.aac_bitrate"},
		{name: "flv opus", mod: func(c *Config) { c.FLV.Opus = "drop" }, wantErr: "flv.opus"},
		{name: "flv write interval negative", mod: func(c *Config) { c.FLV.WriteInterval = -time.Millisecond }, wantErr: "flv.write_interval"},
		{name: "flv write interval over 1s", mod: func(c *Config) { c.FLV.WriteInterval = 2 * time.Second }, wantErr: "flv.write_interval"},
		{name: "hls variant", mod: func(c *Config) { c.HLS.Variant = "dash" }, wantErr: "hls.variant"},
		{name: "hls window", mod: func(c *Config) { c.HLS.Window = 0 }, wantErr: "hls.window"},
		{name: "lowlatency window", mod: func(c *Config) { c.HLS.Variant = "lowlatency"; c.HLS.Window = 6 }, wantErr: "hls.window"},
		{name: "hls segment", mod: func(c *Config) { c.HLS.Segment = 0 }, wantErr: "hls.segment"},
		{name: "calls mode", mod: func(c *Config) { c.Calls.Mode = "mesh" }, wantErr: "calls.mode"},
		{name: "calls max message", mod: func(c *Config) { c.Calls.MaxMessage = 0 }, wantErr: "calls.max_message"},
		{name: "origin without redis", mod: func(c *Config) { c.Role = "origin" }, wantErr: "cluster.redis"},
		{name: "edge without redis", mod: func(c *Config) { c.Role = "edge" }, wantErr: "cluster.redis"},
		{name: "origin with redis", mod: func(c *Config) { c.Role = "origin"; c.Cluster.Redis = "redis://127.0.0.1:6379/0" }},
		{name: "bad redis url", mod: func(c *Config) { c.Cluster.Redis = "http://x" }, wantErr: "cluster.redis"},
		{name: "bad advertise", mod: func(c *Config) { c.Cluster.Advertise = "x:1" }, wantErr: "cluster.advertise"},
		{name: "bad origin", mod: func(c *Config) { c.Cluster.Origins = []string{"nohost"} }, wantErr: "cluster.origins[0]"},
		{name: "node ttl", mod: func(c *Config) { c.Cluster.NodeTTL = time.Millisecond }, wantErr: "cluster.node_ttl"},
		{name: "negative limit", mod: func(c *Config) { c.Limits.MaxConnections.WebSocket = -1 }, wantErr: "limits.max_connections.websocket"},
		{name: "negative streams", mod: func(c *Config) { c.Limits.MaxStreams = -1 }, wantErr: "limits.max_streams"},
		{name: "cors newline", mod: func(c *Config) { c.HTTP.CORS = "a\nb" }, wantErr: "http.cors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.mod(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrConfig)
			require.Contains(t, err.Error(), tc.wantErr+":")
		})
	}
}

// TestValidateNamesEveryProblem: all problems are reported at once.
func TestValidateNamesEveryProblem(t *testing.T) {
	c := Defaults()
	c.Role = "x"
	c.HLS.Variant = "y"
	err := c.Validate()
	require.Error(t, err)
	require.Contains(t, err.Error(), "role:")
	require.Contains(t, err.Error(), "hls.variant:")
}

func TestMarshalRoundTrip(t *testing.T) {
	c := Defaults()
	c.WebRTC.PublicIPs = []string{"127.0.0.1"}
	c.WebRTC.ICEServers = []ICEServer{{URLs: []string{"stun:a:1"}}, {URLs: []string{"turn:b:2"}, Username: "u", Credential: "p"}}
	c.Cluster.Origins = []string{"a:1"}
	c.Auth.Hooks.OnPlay = []string{"http://h/x"}
	c.HTTP.CORS = "*"
	c.SFU.Grace = 1500 * time.Millisecond
	out, err := c.Marshal()
	require.NoError(t, err)
	var back Config
	require.NoError(t, Parse(out, &back))
	require.Equal(t, c, back)
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("hls:\n  variant: dash\n"), 0o644))
	unknown := filepath.Join(dir, "unknown.yaml")
	require.NoError(t, os.WriteFile(unknown, []byte("http:\n  lisen: :1\n"), 0o644))
	cases := []struct {
		name     string
		args     []string
		env      []string
		code     int
		stdout   string
		stderr   string
		roundTri bool
	}{
		{name: "token without stream", args: []string{"token", "-secret", "s"}, code: 2, stderr: "usage"},
		{name: "invalid value", args: []string{"-c", bad}, code: 1, stderr: "hls.variant"},
		{name: "unknown key", args: []string{"-c", unknown}, code: 1, stderr: "lisen"},
		{name: "bad env", args: []string{"-print-config"}, env: []string{"ESTUARY_LOG_LEVEL=loud"}, code: 1, stderr: "log.level"},
		{name: "bad flag", args: []string{"-x"}, code: 2},
		{name: "extra argument", args: []string{"serve"}, code: 2, stderr: "unexpected argument"},
		{name: "print config", args: []string{"-print-config"}, env: []string{"ESTUARY_HLS_WINDOW=11"}, code: 0, stdout: "window: 11", roundTri: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, tc.env, &out, &errb)
			require.Equal(t, tc.code, code, "stderr: %s", errb.String())
			require.Contains(t, out.String(), tc.stdout)
			require.Contains(t, errb.String(), tc.stderr)
			if tc.roundTri {
				c := Defaults()
				require.NoError(t, Parse(out.Bytes(), &c))
				require.NoError(t, c.Validate())
				require.Equal(t, 11, c.HLS.Window)
			}
		})
	}
}

// FuzzParse: any input gives an error or a valid config that prints and reads back identically;
// never a panic.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"", "role: edge\n", "sfu:\n  grace: 10\n", "webrtc:\n  nack: off\n  ice_servers: [stun:a:1, {urls: [turn:b:2], username: u}]\n",
		"limits:\n  max_connections:\n    rtmp: 5\n", "http:\n  cors: '*'\n", "- a\n", "a: &x 1\nb: *x\n", "hls:\n  window: -1\n",
		"cluster:\n  origins: [a:1, b:2]\n  redis: redis://h:1/0\nrole: edge\n", "{", "role: [a]\n",
	}
	if data, err := os.ReadFile("../../configs/estuary.yaml"); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, tc := range parseCases {
		seeds = append(seeds, tc.yaml)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Defaults()
		if err := Parse(data, &c); err != nil {
			require.ErrorIs(t, err, ErrConfig)
			return
		}
		if err := c.Validate(); err != nil {
			require.ErrorIs(t, err, ErrConfig)
			return
		}
		out, err := c.Marshal()
		require.NoError(t, err)
		back := Defaults()
		require.NoError(t, Parse(out, &back))
		out2, err := back.Marshal()
		require.NoError(t, err)
		require.Equal(t, string(out), string(out2))
	})
}

// FuzzApplyEnv: any ESTUARY_ variable gives an error (naming the key) or a config; never a panic.
func FuzzApplyEnv(f *testing.F) {
	for _, s := range []string{"ROLE=edge", "WEBRTC_NACK=off", "WEBRTC_PUBLIC_IPS=a,b", "SFU_GRACE=10", "WEBRTC_ICE_SERVERS=stun:a:1,{x}",
		"LIMITS_MAX_CONNECTIONS_RTMP=9999999999999999999999", "AUTH_HOOKS_ON_PLAY=,", "HLS_WINDOW=-3", "X=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		c := Defaults()
		err := ApplyEnv(&c, []string{"ESTUARY_" + kv})
		if err != nil {
			require.ErrorIs(t, err, ErrConfig)
			require.Contains(t, err.Error(), "ESTUARY_")
			return
		}
		_ = c.Validate()
		_, err = c.Marshal()
		require.NoError(t, err)
	})
}
