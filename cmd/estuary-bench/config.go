package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// config is estuary-bench's command line.
type config struct {
	whep, flv, rtmp, hls     string // target URLs (templates or bases; "" = kind off)
	stream                   string // app/stream
	n                        int    // readers per enabled kind
	nWHEP, nFLV, nRTMP, nHLS int    // per-kind overrides (-1 = use n)
	ramp                     float64
	duration, warmup         time.Duration
	joinTimeout              time.Duration
	pid                      int
	jsonPath                 string
	probe                    bool
	quiet                    bool
	rtcp                     bool
	rcvbuf                   int
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("estuary-bench", flag.ContinueOnError)
	fs.StringVar(&c.whep, "whep", "", "WHEP endpoint: a base (http://host:8080 -> /whep/{stream}), a full URL, or a template with {stream}, {app}, {name} (MediaMTX: http://host:8889/{stream}/whep)")
	fs.StringVar(&c.flv, "flv", "", "HTTP-FLV URL: a base (-> /{stream}.flv), a full URL or a template")
	fs.StringVar(&c.rtmp, "rtmp", "", "RTMP play URL: a base rtmp://host:1935 (-> /{stream}), a full URL or a template")
	fs.StringVar(&c.hls, "hls", "", "HLS playlist URL: a base (-> /{stream}.m3u8), a full URL or a template")
	fs.StringVar(&c.stream, "stream", "live/test", "stream key app/stream substituted into the URLs")
	fs.IntVar(&c.n, "n", 10, "readers of each enabled kind")
	fs.IntVar(&c.nWHEP, "n-whep", -1, "WHEP viewers (default -n)")
	fs.IntVar(&c.nFLV, "n-flv", -1, "HTTP-FLV readers (default -n)")
	fs.IntVar(&c.nRTMP, "n-rtmp", -1, "RTMP readers (default -n)")
	fs.IntVar(&c.nHLS, "n-hls", -1, "HLS readers (default -n)")
	fs.Float64Var(&c.ramp, "ramp", 50, "readers started per second, all kinds together (0 = all at once)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measurement window, after every reader joined (or failed) and -warmup")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "wait after the joins before the measurement window")
	fs.DurationVar(&c.joinTimeout, "join-timeout", 10*time.Second, "a reader without media after this long is a join failure")
	fs.IntVar(&c.pid, "pid", 0, "server PID: report its CPU time and RSS from /proc")
	fs.StringVar(&c.jsonPath, "json", "", "write the JSON report to this file (- = stdout)")
	fs.BoolVar(&c.probe, "probe", false, "join one reader of each enabled kind, report which kinds play, and exit")
	fs.BoolVar(&c.quiet, "q", false, "no progress output")
	fs.IntVar(&c.rcvbuf, "udp-rcvbuf", 1<<20, "receive buffer of each WHEP viewer's UDP socket in bytes (capped by net.core.rmem_max; 0 = system default)")
	fs.BoolVar(&c.rtcp, "rtcp", false, "WHEP viewers send receiver reports and NACKs (default: no interceptors)")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	if c.whep == "" && c.flv == "" && c.rtmp == "" && c.hls == "" {
		return c, fmt.Errorf("%w: give at least one of -whep, -flv, -rtmp, -hls", ErrUsage)
	}
	app, name, ok := strings.Cut(c.stream, "/")
	if !ok || app == "" || name == "" {
		return c, fmt.Errorf("%w: -stream %q is not app/stream", ErrUsage, c.stream)
	}
	if c.n < 0 || c.ramp < 0 || c.duration <= 0 || c.joinTimeout <= 0 || c.warmup < 0 {
		return c, fmt.Errorf("%w: -n, -ramp, -warmup must be >= 0, -duration and -join-timeout > 0", ErrUsage)
	}
	for _, p := range []*int{&c.nWHEP, &c.nFLV, &c.nRTMP, &c.nHLS} {
		if *p < 0 {
			*p = c.n
		}
	}
	return c, nil
}

// targetURL builds a kind's URL from what the user gave: a template with {stream} ({path} is
// the same), {app} and {name}; or a base with no path, to which defPath (with {stream}) is
// appended; or a full URL used as it is.
func targetURL(given, stream, defPath string) (string, error) {
	if given == "" {
		return "", nil
	}
	app, name, _ := strings.Cut(stream, "/")
	if strings.Contains(given, "{") {
		r := strings.NewReplacer("{stream}", stream, "{path}", stream, "{app}", app, "{name}", name)
		given = r.Replace(given)
	} else {
		u, err := url.Parse(given)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", ErrUsage, given, err)
		}
		if u.Path == "" || u.Path == "/" {
			given = strings.TrimSuffix(given, "/") + strings.ReplaceAll(defPath, "{stream}", stream)
		}
	}
	u, err := url.Parse(given)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: %q is not an absolute URL", ErrUsage, given)
	}
	return u.String(), nil
}

// isLoopback reports whether the URL's host is a loopback address or "localhost".
func isLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
