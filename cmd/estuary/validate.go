package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks every key and returns all problems, each naming its key.
func (c *Config) Validate() error {
	v := &validator{}
	v.oneOf("role", c.Role, "standalone", "origin", "edge")
	if !validNodeID(c.NodeID) {
		v.bad("node_id", "%q must be 1-64 characters of [A-Za-z0-9_.-] (it appears in URLs)", c.NodeID)
	}
	v.positive("shutdown_timeout", c.ShutdownTimeout)

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")

	v.listen("rtmp.listen", c.RTMP.Listen, true)
	v.listen("rtmp.tls_listen", c.RTMP.TLSListen, true)
	v.pair("rtmp.tls_cert", c.RTMP.TLSCert, "rtmp.tls_key", c.RTMP.TLSKey)
	if c.RTMP.ChunkSize < 128 || c.RTMP.ChunkSize > 0xFFFFFF {
		v.bad("rtmp.chunk_size", "%d is outside 128..16777215", c.RTMP.ChunkSize)
	}
	if c.RTMP.MaxMessageSize < 1024 || c.RTMP.MaxMessageSize > 0xFFFFFF {
		v.bad("rtmp.max_message_size", "%d is outside 1024..16777215 (RTMP message lengths are 24-bit)", c.RTMP.MaxMessageSize)
	}

	v.listen("http.listen", c.HTTP.Listen, false)
	v.listen("http.srs_api_listen", c.HTTP.SRSAPIListen, true)
	v.pair("http.tls_cert", c.HTTP.TLSCert, "http.tls_key", c.HTTP.TLSKey)
	if strings.ContainsAny(c.HTTP.CORS, "\r\n") {
		v.bad("http.cors", "must be one line")
	}
	if strings.ContainsAny(c.HTTP.APIToken, " \t\r\n") {
		v.bad("http.api_token", "must not contain white space")
	}

	if c.WebRTC.ListenIP != "" && net.ParseIP(c.WebRTC.ListenIP) == nil {
		v.bad("webrtc.listen_ip", "%q is not an IP address", c.WebRTC.ListenIP)
	}
	if c.WebRTC.UDPPort < 1 || c.WebRTC.UDPPort > 65535 {
		v.bad("webrtc.udp_port", "%d is outside 1..65535", c.WebRTC.UDPPort)
	}
	v.port("webrtc.tcp_port", c.WebRTC.TCPPort) // 0 turns ICE-TCP off
	for i, ip := range c.WebRTC.PublicIPs {
		if net.ParseIP(ip) == nil {
			v.bad(fmt.Sprintf("webrtc.public_ips[%d]", i), "%q is not an IP address", ip)
		}
	}
	for i, s := range c.WebRTC.ICEServers {
		key := fmt.Sprintf("webrtc.ice_servers[%d]", i)
		if len(s.URLs) == 0 {
			v.bad(key, "has no urls")
		}
		for _, u := range s.URLs {
			if !validICEURL(u) {
				v.bad(key, "%q is not a stun:, stuns:, turn: or turns: URL", u)
			}
		}
	}
	v.oneOf("webrtc.bframes", c.WebRTC.BFrames, "drop", "keep")
	v.positive("webrtc.keyframe_interval", c.WebRTC.KeyframeInterval)

	v.positive("sfu.grace", c.SFU.Grace) // the hub reads 0 as its default
	v.positive("sfu.gop_cache_max_duration", c.SFU.GOPCacheMaxDuration)
	if c.SFU.GOPCacheMaxBytes <= 0 {
		v.bad("sfu.gop_cache_max_bytes", "%d must be positive", c.SFU.GOPCacheMaxBytes)
	}

	if c.TURN.Enabled {
		v.listen("turn.listen", c.TURN.Listen, false)
		if c.TURN.Realm == "" {
			v.bad("turn.realm", "must not be empty when turn.enabled is on")
		}
	} else {
		v.listen("turn.listen", c.TURN.Listen, true)
	}
	if c.TURN.PublicIP != "" && net.ParseIP(c.TURN.PublicIP) == nil {
		v.bad("turn.public_ip", "%q is not an IP address", c.TURN.PublicIP)
	}
	for i, p := range c.TURN.DeniedPeers {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			v.bad(fmt.Sprintf("turn.denied_peers[%d]", i), "%q is not a CIDR or IP address", p)
		}
	}
	v.count("turn.quota", c.TURN.Quota)

	v.oneOf("auth.publish", c.Auth.Publish, "none", "token", "hook")
	v.oneOf("auth.play", c.Auth.Play, "none", "token", "hook")
	if (c.Auth.Publish == "token" || c.Auth.Play == "token") && c.Auth.Secret == "" {
		v.bad("auth.secret", "must be set when auth.publish or auth.play is token")
	}
	hooks := []struct {
		key  string
		urls []string
	}{
		{"auth.hooks.on_publish", c.Auth.Hooks.OnPublish},
		{"auth.hooks.on_unpublish", c.Auth.Hooks.OnUnpublish},
		{"auth.hooks.on_play", c.Auth.Hooks.OnPlay},
		{"auth.hooks.on_stop", c.Auth.Hooks.OnStop},
	}
	for _, h := range hooks {
		for i, u := range h.urls {
			v.httpURL(fmt.Sprintf("%s[%d]", h.key, i), u)
		}
	}
	if c.Auth.Publish == "hook" && len(c.Auth.Hooks.OnPublish) == 0 {
		v.bad("auth.hooks.on_publish", "must list a URL when auth.publish is hook")
	}
	if c.Auth.Play == "hook" && len(c.Auth.Hooks.OnPlay) == 0 {
		v.bad("auth.hooks.on_play", "must list a URL when auth.play is hook")
	}
	v.positive("auth.hook_timeout", c.Auth.HookTimeout)

	if c.Audio.OpusBitrate < 6000 || c.Audio.OpusBitrate > 510000 {
		v.bad("audio.opus_bitrate", "%d is outside 6000..510000", c.Audio.OpusBitrate)
	}
	if c.Audio.AACBitrate < 8000 || c.Audio.AACBitrate > 512000 {
		v.bad("audio.aac_bitrate", "%d is outside 8000..512000", c.Audio.AACBitrate)
	}

	v.oneOf("flv.opus", c.FLV.Opus, "transcode", "passthrough")
	if c.FLV.WriteInterval < 0 || c.FLV.WriteInterval > time.Second {
		v.bad("flv.write_interval", "must be between 0 (a write per frame) and 1s, got %v", c.FLV.WriteInterval)
	}

	v.oneOf("hls.variant", c.HLS.Variant, "mpegts", "fmp4", "lowlatency")
	v.positive("hls.segment", c.HLS.Segment)
	if c.HLS.Window < 1 {
		v.bad("hls.window", "%d must be at least 1", c.HLS.Window)
	} else if c.HLS.Variant == "lowlatency" && c.HLS.Window < 7 {
		v.bad("hls.window", "%d must be at least 7 with hls.variant lowlatency", c.HLS.Window)
	}
	v.positive("hls.idle_timeout", c.HLS.IdleTimeout)

	v.oneOf("calls.mode", c.Calls.Mode, "p2p", "sfu")
	if c.Calls.Mode == "sfu" {
		// DESIGN.md names the mode; it is not built yet, so say so at load time, not at start.
		v.bad("calls.mode", "sfu is not built yet: calls run peer to peer (p2p) through the embedded TURN")
	}
	v.positive("calls.heartbeat_timeout", c.Calls.HeartbeatTimeout)
	if c.Calls.MaxMessage < 1024 || c.Calls.MaxMessage > 16<<20 {
		v.bad("calls.max_message", "%d is outside 1024..16777216", c.Calls.MaxMessage)
	}

	if c.Cluster.Redis != "" {
		u, err := url.Parse(c.Cluster.Redis)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			v.bad("cluster.redis", "is not a redis:// or rediss:// URL")
		}
	}
	if c.Role != "standalone" && c.Cluster.Redis == "" {
		v.bad("cluster.redis", "must be set for role %s", c.Role)
	}
	if c.Role == "edge" && c.Cluster.Redis == "" && len(c.Cluster.Origins) == 0 {
		v.bad("cluster.origins", "an edge needs cluster.redis or cluster.origins")
	}
	if c.Cluster.Advertise != "" {
		v.httpURL("cluster.advertise", c.Cluster.Advertise)
	}
	for i, o := range c.Cluster.Origins {
		key := fmt.Sprintf("cluster.origins[%d]", i)
		if host, port, err := net.SplitHostPort(o); err != nil || host == "" || !validPort(port, false) {
			v.bad(key, "%q is not host:port", o)
		}
	}
	v.positive("cluster.wait_for_stream", c.Cluster.WaitForStream)
	v.positive("cluster.node_ttl", c.Cluster.NodeTTL)
	if c.Cluster.NodeTTL > 0 && c.Cluster.NodeTTL < 300*time.Millisecond {
		v.bad("cluster.node_ttl", "%s is shorter than 300ms", c.Cluster.NodeTTL)
	}

	v.count("limits.max_connections.rtmp", c.Limits.MaxConnections.RTMP)
	v.count("limits.max_connections.webrtc", c.Limits.MaxConnections.WebRTC)
	v.count("limits.max_connections.http", c.Limits.MaxConnections.HTTP)
	v.count("limits.max_connections.websocket", c.Limits.MaxConnections.WebSocket)
	v.count("limits.max_streams", c.Limits.MaxStreams)

	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(v.errs...))
}

// validator collects problems.
type validator struct{ errs []error }

func (v *validator) bad(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.bad(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.bad(key, "%s must be a positive duration (e.g. 5s)", d)
	}
}

func (v *validator) count(key string, n int) {
	if n < 0 {
		v.bad(key, "%d must not be negative (0 = unlimited)", n)
	}
}

func (v *validator) port(key string, p int) {
	if p < 0 || p > 65535 {
		v.bad(key, "%d is outside 0..65535", p)
	}
}

// listen checks a "host:port" listen address; empty is allowed when optional (the listener is off).
func (v *validator) listen(key, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.bad(key, "must not be empty")
		}
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.bad(key, "%q is not a listen address (host:port or :port)", addr)
		return
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		v.bad(key, "%q has an invalid host", addr)
	}
	if !validPort(port, true) {
		v.bad(key, "%q has an invalid port", addr)
	}
}

func (v *validator) pair(k1, v1, k2, v2 string) {
	if (v1 == "") != (v2 == "") {
		if v1 == "" {
			v.bad(k1, "must be set together with %s", k2)
		} else {
			v.bad(k2, "must be set together with %s", k1)
		}
	}
}

func (v *validator) httpURL(key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.bad(key, "%q is not an http:// or https:// URL", s)
	}
}

func validPort(p string, zeroOK bool) bool {
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return false
	}
	return zeroOK || n > 0
}

func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func validNodeID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

func validICEURL(u string) bool {
	for _, p := range []string{"stun:", "stuns:", "turn:", "turns:"} {
		if strings.HasPrefix(u, p) && len(u) > len(p) {
			return true
		}
	}
	return false
}
