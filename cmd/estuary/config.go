package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole YAML configuration of one node (DESIGN.md "Config"). Defaults() fills every
// default; Load layers a file and the environment on top; Validate names the key and the problem.
// Booleans accept YAML's true/false and on/off.
type Config struct {
	Role            string        `yaml:"role"`             // standalone | origin | edge (standalone)
	NodeID          string        `yaml:"node_id"`          // unique per node (hostname); [A-Za-z0-9_.-]+
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"` // graceful shutdown bound (10s)

	Log     LogConfig     `yaml:"log"`
	RTMP    RTMPConfig    `yaml:"rtmp"`
	HTTP    HTTPConfig    `yaml:"http"`
	WebRTC  WebRTCConfig  `yaml:"webrtc"`
	SFU     SFUConfig     `yaml:"sfu"`
	TURN    TURNConfig    `yaml:"turn"`
	Auth    AuthConfig    `yaml:"auth"`
	Audio   AudioConfig   `yaml:"audio"`
	FLV     FLVConfig     `yaml:"flv"`
	HLS     HLSConfig     `yaml:"hls"`
	Calls   CallsConfig   `yaml:"calls"`
	Cluster ClusterConfig `yaml:"cluster"`
	Limits  LimitsConfig  `yaml:"limits"`
}

// LogConfig is the log section.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error (info)
	Format string `yaml:"format"` // text | json (text)
}

// RTMPConfig is the rtmp section. An empty listen address turns that listener off.
type RTMPConfig struct {
	Listen         string `yaml:"listen"`           // :1935
	TLSListen      string `yaml:"tls_listen"`       // :1936, used when tls_cert and tls_key are set
	TLSCert        string `yaml:"tls_cert"`         // PEM file
	TLSKey         string `yaml:"tls_key"`          // PEM file
	ChunkSize      int    `yaml:"chunk_size"`       // outgoing chunk size (4096), 128..16777215
	MaxMessageSize int    `yaml:"max_message_size"` // largest accepted message (8388608), <= 16777215
}

// HTTPConfig is the http section.
type HTTPConfig struct {
	Listen       string `yaml:"listen"`         // :8080
	SRSAPIListen string `yaml:"srs_api_listen"` // :1985, same handler; "" turns it off
	TLSCert      string `yaml:"tls_cert"`       // HTTPS when both are set
	TLSKey       string `yaml:"tls_key"`
	CORS         string `yaml:"cors"`      // Access-Control-Allow-Origin value ("*"); "" sends none
	APIToken     string `yaml:"api_token"` // when set, /api/ needs "Authorization: Bearer <token>"
	PProf        bool   `yaml:"pprof"`     // serve Go's /debug/pprof/ (off; trusted networks only)
}

// ICEServer is one entry of webrtc.ice_servers: either a URL string ("stun:host:3478") or a mapping
// {urls, username, credential}.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username,omitempty"`
	Credential string   `yaml:"credential,omitempty"`
}

// UnmarshalYAML accepts a plain URL string or a mapping with the known keys only.
func (s *ICEServer) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var u string
		if err := n.Decode(&u); err != nil {
			return err
		}
		*s = ICEServer{URLs: []string{u}}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: an ICE server is a URL or a mapping {urls, username, credential}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "urls", "username", "credential":
		default:
			return fmt.Errorf("line %d: field %s not found in type ICEServer", n.Content[i].Line, k)
		}
	}
	type plain ICEServer
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = ICEServer(p)
	return nil
}

// WebRTCConfig is the webrtc section.
type WebRTCConfig struct {
	ListenIP         string        `yaml:"listen_ip"`         // "" = all interfaces
	UDPPort          int           `yaml:"udp_port"`          // ICE UDP mux port (8000)
	TCPPort          int           `yaml:"tcp_port"`          // ICE-TCP port (8000); 0 = ICE-TCP off
	PublicIPs        []string      `yaml:"public_ips"`        // candidates to advertise (all interfaces)
	ICEServers       []ICEServer   `yaml:"ice_servers"`       // handed to clients (WHIP/WHEP Link headers)
	NACK             bool          `yaml:"nack"`              // on
	TWCC             bool          `yaml:"twcc"`              // on
	GOPCache         bool          `yaml:"gop_cache"`         // on
	BFrames          string        `yaml:"bframes"`           // drop | keep (drop)
	KeyframeInterval time.Duration `yaml:"keyframe_interval"` // PLI period while FLV/HLS outputs run (2s)
	Batch            bool          `yaml:"batch"`             // a viewer's packets leave in batches (on)
	GSO              bool          `yaml:"gso"`               // batches use UDP GSO where Linux has it (on)
	Direct           bool          `yaml:"direct"`            // viewers' RTP skips pion's write path (on)
}

// SFUConfig is the sfu section.
type SFUConfig struct {
	Grace               time.Duration `yaml:"grace"`                  // 10s
	Takeover            bool          `yaml:"takeover"`               // off
	GOPCacheMaxDuration time.Duration `yaml:"gop_cache_max_duration"` // 5s
	GOPCacheMaxBytes    int           `yaml:"gop_cache_max_bytes"`    // 8388608
}

// TURNConfig is the turn section (embedded TURN server).
type TURNConfig struct {
	Enabled       bool     `yaml:"enabled"`        // on
	Listen        string   `yaml:"listen"`         // :3478 (UDP and TCP)
	Realm         string   `yaml:"realm"`          // estuary
	Secret        string   `yaml:"secret"`         // credential secret; "" = random per process
	PublicIP      string   `yaml:"public_ip"`      // relay address to advertise
	DeniedPeers   []string `yaml:"denied_peers"`   // CIDRs a relay may not reach
	AllowLoopback bool     `yaml:"allow_loopback"` // off
	Quota         int      `yaml:"quota"`          // allocations per user, 0 = unlimited
}

// HooksConfig lists the HTTP callbacks of auth.hooks.
type HooksConfig struct {
	OnPublish   []string `yaml:"on_publish"`
	OnUnpublish []string `yaml:"on_unpublish"`
	OnPlay      []string `yaml:"on_play"`
	OnStop      []string `yaml:"on_stop"`
}

// AuthConfig is the auth section.
type AuthConfig struct {
	Publish     string        `yaml:"publish"`      // none | token | hook (none)
	Play        string        `yaml:"play"`         // none | token | hook (none)
	Secret      string        `yaml:"secret"`       // HS256 secret for tokens
	Hooks       HooksConfig   `yaml:"hooks"`        // URL lists
	HookTimeout time.Duration `yaml:"hook_timeout"` // 3s
}

// AudioConfig is the audio section.
type AudioConfig struct {
	OpusBitrate int `yaml:"opus_bitrate"` // 96000 (6000..510000)
	AACBitrate  int `yaml:"aac_bitrate"`  // 128000
}

// FLVConfig is the flv section.
type FLVConfig struct {
	Opus string `yaml:"opus"` // transcode | passthrough (transcode)
	// WriteInterval merges each HTTP-FLV / RTMP-play viewer's writes over this long (100ms; SRS's
	// mw_latency): fewer, larger writes, up to this much more latency. 0: one write per video frame.
	WriteInterval time.Duration `yaml:"write_interval"`
}

// HLSConfig is the hls section.
type HLSConfig struct {
	Variant     string        `yaml:"variant"`      // mpegts | fmp4 | lowlatency (mpegts)
	Segment     time.Duration `yaml:"segment"`      // 2s
	Window      int           `yaml:"window"`       // segments in the playlist (7)
	IdleTimeout time.Duration `yaml:"idle_timeout"` // 30s
}

// CallsConfig is the calls section.
type CallsConfig struct {
	Mode             string        `yaml:"mode"`              // p2p | sfu (p2p)
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"` // 30s
	MaxMessage       int           `yaml:"max_message"`       // 65536
}

// ClusterConfig is the cluster section.
type ClusterConfig struct {
	Redis         string        `yaml:"redis"`           // redis:// or rediss:// URL
	Advertise     string        `yaml:"advertise"`       // this node's HTTP URL for relays
	Origins       []string      `yaml:"origins"`         // origin HTTP addresses host:port
	Token         string        `yaml:"token"`           // relay bearer token
	WaitForStream time.Duration `yaml:"wait_for_stream"` // 5s
	NodeTTL       time.Duration `yaml:"node_ttl"`        // 3s
	Takeover      bool          `yaml:"takeover"`        // off
}

// MaxConnections is limits.max_connections (0 = unlimited).
type MaxConnections struct {
	RTMP      int `yaml:"rtmp"`
	WebRTC    int `yaml:"webrtc"`
	HTTP      int `yaml:"http"`
	WebSocket int `yaml:"websocket"`
}

// LimitsConfig is the limits section.
type LimitsConfig struct {
	MaxConnections MaxConnections `yaml:"max_connections"`
	MaxStreams     int            `yaml:"max_streams"` // 0 = unlimited
}

// Defaults returns DESIGN.md's defaults; node_id is the hostname.
func Defaults() Config {
	host, err := os.Hostname()
	if err != nil || !validNodeID(host) {
		host = "estuary"
	}
	return Config{
		Role:            "standalone",
		NodeID:          host,
		ShutdownTimeout: 10 * time.Second,
		Log:             LogConfig{Level: "info", Format: "text"},
		RTMP: RTMPConfig{
			Listen: ":1935", TLSListen: ":1936",
			ChunkSize: 4096, MaxMessageSize: 8388608,
		},
		HTTP: HTTPConfig{Listen: ":8080", SRSAPIListen: ":1985", CORS: "*"},
		WebRTC: WebRTCConfig{
			UDPPort: 8000, TCPPort: 8000,
			NACK: true, TWCC: true, GOPCache: true, BFrames: "drop", Batch: true, GSO: true, Direct: true,
			KeyframeInterval: 2 * time.Second,
		},
		SFU: SFUConfig{
			Grace: 10 * time.Second, GOPCacheMaxDuration: 5 * time.Second, GOPCacheMaxBytes: 8388608,
		},
		TURN:    TURNConfig{Enabled: true, Listen: ":3478", Realm: "estuary"},
		Auth:    AuthConfig{Publish: "none", Play: "none", HookTimeout: 3 * time.Second},
		Audio:   AudioConfig{OpusBitrate: 96000, AACBitrate: 128000},
		FLV:     FLVConfig{Opus: "transcode", WriteInterval: 100 * time.Millisecond},
		HLS:     HLSConfig{Variant: "mpegts", Segment: 2 * time.Second, Window: 7, IdleTimeout: 30 * time.Second},
		Calls:   CallsConfig{Mode: "p2p", HeartbeatTimeout: 30 * time.Second, MaxMessage: 65536},
		Cluster: ClusterConfig{WaitForStream: 5 * time.Second, NodeTTL: 3 * time.Second},
	}
}

// maxConfigBytes bounds a config file.
const maxConfigBytes = 1 << 20

// Parse decodes YAML strictly on top of cfg (unknown keys are an error). Empty input changes nothing.
func Parse(data []byte, cfg *Config) error {
	if len(data) > maxConfigBytes {
		return fmt.Errorf("%w: larger than %d bytes", ErrConfig, maxConfigBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: %s", ErrConfig, nameKeys(data, te.Errors))
		}
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: more than one YAML document", ErrConfig)
	}
	normalize(reflect.ValueOf(cfg).Elem())
	return nil
}

// nameKeys prefixes each "line N: problem" of a decode error with the dotted key at that line.
func nameKeys(data []byte, problems []string) string {
	var root yaml.Node
	lines := map[int]string{}
	if yaml.Unmarshal(data, &root) == nil {
		var walk func(n *yaml.Node, prefix string)
		walk = func(n *yaml.Node, prefix string) {
			switch n.Kind {
			case yaml.DocumentNode:
				for _, c := range n.Content {
					walk(c, prefix)
				}
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					k, v := n.Content[i], n.Content[i+1]
					p := k.Value
					if prefix != "" {
						p = prefix + "." + k.Value
					}
					lines[k.Line] = p // deeper keys on the same line overwrite
					if v.Kind == yaml.ScalarNode {
						lines[v.Line] = p
					}
					walk(v, p)
				}
			case yaml.SequenceNode:
				for i, c := range n.Content {
					p := fmt.Sprintf("%s[%d]", prefix, i)
					if c.Kind == yaml.ScalarNode {
						lines[c.Line] = p
					}
					walk(c, p)
				}
			}
		}
		walk(&root, "")
	}
	out := make([]string, 0, len(problems))
	for _, p := range problems {
		var line int
		if _, err := fmt.Sscanf(p, "line %d:", &line); err == nil {
			if key, ok := lines[line]; ok {
				p = key + ": " + p
			}
		}
		out = append(out, p)
	}
	return strings.Join(out, "; ")
}

// normalize turns empty lists into nil, so "[]" and an absent list compare equal.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			normalize(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if !v.IsNil() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	}
}

// Load builds the effective config: defaults, then the file (if path is not ""), then the
// environment (ESTUARY_{SECTION}_{KEY}), then Validate.
func Load(path string, environ []string) (Config, error) {
	cfg := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if err := Parse(data, &cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := ApplyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Marshal prints the config as YAML (what -print-config shows); Parse reads it back identically.
func (c Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// envPrefix starts every environment override.
const envPrefix = "ESTUARY_"

// envKey is one leaf of the config reachable from the environment.
type envKey struct {
	path string // dotted YAML path, e.g. "cluster.wait_for_stream"
	env  string // ESTUARY_CLUSTER_WAIT_FOR_STREAM
	idx  []int  // reflect field index path
}

// envKeys lists every leaf key of Config (nested structs are walked; lists and scalars are leaves).
func envKeys() []envKey {
	var out []envKey
	var walk func(t reflect.Type, prefix string, idx []int)
	walk = func(t reflect.Type, prefix string, idx []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			fi := append(append([]int(nil), idx...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, p, fi)
				continue
			}
			out = append(out, envKey{
				path: p,
				env:  envPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_")),
				idx:  fi,
			})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

// ApplyEnv applies ESTUARY_* overrides from environ ("K=V" entries). Lists are comma-separated;
// booleans take on/off/true/false; durations are Go durations. Unknown ESTUARY_ variables are
// ignored (the test tooling uses some, e.g. ESTUARY_BIN).
func ApplyEnv(cfg *Config, environ []string) error {
	vals := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, envPrefix) {
			vals[k] = v
		}
	}
	if len(vals) == 0 {
		return nil
	}
	root := reflect.ValueOf(cfg).Elem()
	for _, k := range envKeys() {
		v, ok := vals[k.env]
		if !ok {
			continue
		}
		field := root.FieldByIndex(k.idx)
		if err := setFromEnv(field, v); err != nil {
			return fmt.Errorf("%w: %s (from %s=%q): %w", ErrConfig, k.path, k.env, v, err)
		}
	}
	return nil
}

// setFromEnv decodes an environment value into field through a YAML node, so the same conversions
// (durations, on/off) apply as in the file.
func setFromEnv(field reflect.Value, v string) error {
	var node yaml.Node
	switch field.Kind() {
	case reflect.Slice:
		node = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if strings.TrimSpace(v) != "" {
			for _, part := range strings.Split(v, ",") {
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(part)})
			}
		}
	case reflect.String:
		node = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case reflect.Bool:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "on", "true", "yes", "1":
			field.SetBool(true)
			return nil
		case "off", "false", "no", "0":
			field.SetBool(false)
			return nil
		}
		return fmt.Errorf("not a boolean (on/off/true/false)")
	case reflect.Int, reflect.Int64:
		if field.Type() == reflect.TypeOf(time.Duration(0)) {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("not a duration (e.g. 5s)")
			}
			field.SetInt(int64(d))
			return nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || field.OverflowInt(n) {
			return fmt.Errorf("not an integer")
		}
		field.SetInt(n)
		return nil
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	tmp := reflect.New(field.Type())
	if err := node.Decode(tmp.Interface()); err != nil {
		return err
	}
	normalize(tmp.Elem())
	field.Set(tmp.Elem())
	return nil
}
