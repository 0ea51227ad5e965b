//go:build e2e

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/estuary-media/estuary/test/harness"
)

// freeEnv overrides every default port with a free one on 127.0.0.1 (never the defaults).
func freeEnv(t *testing.T) (env []string, httpURL, srsURL string) {
	ip := "127.0.0.1"
	hp, sp, rp, up, tp := harness.FreePort(t, ip), harness.FreePort(t, ip), harness.FreePort(t, ip), harness.FreePort(t, ip), harness.FreePort(t, ip)
	env = []string{
		fmt.Sprintf("ESTUARY_HTTP_LISTEN=%s:%d", ip, hp),
		fmt.Sprintf("ESTUARY_HTTP_SRS_API_LISTEN=%s:%d", ip, sp),
		fmt.Sprintf("ESTUARY_RTMP_LISTEN=%s:%d", ip, rp),
		"ESTUARY_RTMP_TLS_LISTEN=",
		"ESTUARY_WEBRTC_LISTEN_IP=" + ip,
		"ESTUARY_WEBRTC_PUBLIC_IPS=" + ip,
		fmt.Sprintf("ESTUARY_WEBRTC_UDP_PORT=%d", up),
		fmt.Sprintf("ESTUARY_WEBRTC_TCP_PORT=%d", tp),
		"ESTUARY_TURN_ENABLED=off",
		"ESTUARY_TURN_LISTEN=",
		"ESTUARY_SHUTDOWN_TIMEOUT=4s",
		"ESTUARY_NODE_ID=env-node",
	}
	return env, fmt.Sprintf("http://%s:%d", ip, hp), fmt.Sprintf("http://%s:%d", ip, sp)
}

// syncBuffer is a bytes.Buffer safe for a process writer and a reader.
type syncBuffer struct {
	mu chanMutex
	b  bytes.Buffer
}

type chanMutex chan struct{}

func (m chanMutex) lock()   { m <- struct{}{} }
func (m chanMutex) unlock() { <-m }

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chanMutex, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.lock()
	defer s.mu.unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.lock(); defer s.mu.unlock(); return s.b.String() }

func waitHTTP(t *testing.T, url string, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("process exited before %s answered", url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 in time", url)
}

// TestAppDefaultsFromEnv starts the binary with no config file, every port moved by the environment,
// checks health, the SRS-shaped API on both HTTP listeners, CORS, the banner, then SIGTERM.
func TestAppDefaultsFromEnv(t *testing.T) {
	bin := harness.Binary(t)
	env, httpURL, srsURL := freeEnv(t)
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
	})
	start := time.Now()
	waitHTTP(t, httpURL+"/healthz", done)
	t.Logf("healthy after %v", time.Since(start).Round(time.Millisecond))

	resp, err := http.Get(httpURL + "/healthz")
	require.NoError(t, err)
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Equal(t, "ok", body.String())
	require.Equal(t, []string{"*"}, resp.Header.Values("Access-Control-Allow-Origin"))

	for _, base := range []string{httpURL, srsURL} {
		var got struct {
			Code    *int             `json:"code"`
			Server  string           `json:"server"`
			Streams []map[string]any `json:"streams"`
		}
		resp, err := http.Get(base + "/api/v1/streams")
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		resp.Body.Close()
		require.NotNil(t, got.Code)
		require.Equal(t, 0, *got.Code)
		require.Equal(t, "env-node", got.Server)
		require.NotNil(t, got.Streams)
		require.Empty(t, got.Streams)
	}
	resp, err = http.Get(httpURL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	// A preflight on a route without its own OPTIONS handler: 204 and one Allow-Origin.
	req, _ := http.NewRequest(http.MethodOptions, httpURL+"/api/v1/clients/x", nil)
	req.Header.Set("Access-Control-Request-Method", "DELETE")
	req.Header.Set("Origin", "http://example.test")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	require.Equal(t, []string{"*"}, resp.Header.Values("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "DELETE")

	// Signaling sets its own CORS headers on its routes: still exactly one Allow-Origin.
	for _, r := range []struct{ method, path, ctype string }{
		{http.MethodOptions, "/whip/live/test", ""},
		{http.MethodPost, "/whip/live/test", "text/plain"},
		{http.MethodPost, "/whep/live/nobody", "application/sdp"},
	} {
		req, _ := http.NewRequest(r.method, httpURL+r.path, strings.NewReader("x"))
		if r.ctype != "" {
			req.Header.Set("Content-Type", r.ctype)
		}
		req.Header.Set("Origin", "http://example.test")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, []string{"*"}, resp.Header.Values("Access-Control-Allow-Origin"), "%s %s", r.method, r.path)
		t.Logf("%s %s -> %d", r.method, r.path, resp.StatusCode)
	}

	require.Contains(t, stdout.String(), httpURL+"/api/v1/streams")
	require.Contains(t, stdout.String(), httpURL+"/whip/live/{stream}")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	stopAt := time.Now()
	select {
	case <-done:
	case <-time.After(4*time.Second + 3*time.Second):
		t.Fatal("no exit within shutdown_timeout (4s) + 3s")
	}
	t.Logf("exited %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	require.NoError(t, waitErr, "exit status")
	require.Equal(t, 0, cmd.ProcessState.ExitCode())
}

// TestAppStartNode: the harness's node answers, reports not-ready while draining and stops with exit 0.
func TestAppStartNode(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{SRSAPI: true, Set: map[string]any{"http.cors": ""}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := n.Get(ctx, "/api/v1/summaries")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	var sum struct {
		Server string `json:"server"`
		Data   struct {
			Self struct {
				PID int `json:"pid"`
			} `json:"self"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &sum))
	require.Equal(t, n.PID, sum.Data.Self.PID)
	require.Equal(t, n.NodeID, sum.Server)

	resp, err := http.Get(n.SRSAPIURL + "/api/v1/streams")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Empty(t, resp.Header.Values("Access-Control-Allow-Origin"), "http.cors \"\" sends none")

	code, _, err = n.Get(ctx, "/api/v1/clients/nobody")
	require.NoError(t, err)
	require.Equal(t, 404, code)

	// Restart: same ports and config, a new process.
	oldPID := n.PID
	n.Restart()
	require.NotEqual(t, oldPID, n.PID)
	code, _, err = n.Get(ctx, "/healthz")
	require.NoError(t, err)
	require.Equal(t, 200, code)

	start := time.Now()
	require.NoError(t, n.Stop())
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	require.Equal(t, 0, n.ExitCode())
}

// TestAppInvalidConfig: a bad config exits non-zero, naming the key and the problem.
func TestAppInvalidConfig(t *testing.T) {
	bin := harness.Binary(t)
	cases := []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{name: "unknown key", yaml: "http:\n  listn: 127.0.0.1:1\n", want: []string{"listn"}},
		{name: "bad enum", yaml: "hls:\n  variant: dash\n", want: []string{"hls.variant", "dash"}},
		{name: "bad duration", yaml: "sfu:\n  grace: 10\n", want: []string{"sfu.grace"}},
		{name: "edge without redis", yaml: "role: edge\n", want: []string{"cluster.redis"}},
		{name: "bad env", env: []string{"ESTUARY_WEBRTC_NACK=perhaps"}, want: []string{"webrtc.nack"}},
		{name: "negative size", yaml: "sfu:\n  gop_cache_max_bytes: -1\n", want: []string{"sfu.gop_cache_max_bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{}
			if tc.yaml != "" {
				f := filepath.Join(t.TempDir(), "bad.yaml")
				require.NoError(t, os.WriteFile(f, []byte(tc.yaml), 0o644))
				args = append(args, "-c", f)
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			require.Error(t, err)
			require.NotEqual(t, 0, cmd.ProcessState.ExitCode())
			for _, w := range tc.want {
				require.Contains(t, stderr.String(), w)
			}
		})
	}
}

// TestAppPrintConfig: -print-config prints valid YAML that loads back to the same config.
func TestAppPrintConfig(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte("webrtc:\n  nack: off\n  public_ips: [127.0.0.9]\nhls:\n  window: 9\n"), 0o644))
	print := func(args []string, env ...string) string {
		cmd := exec.Command(bin, append(args, "-print-config")...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), stderr.String())
		return stdout.String()
	}
	first := print([]string{"-c", in}, "ESTUARY_SFU_GRACE=3s")
	var parsed map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(first), &parsed))
	require.Equal(t, "standalone", parsed["role"])
	require.Equal(t, false, parsed["webrtc"].(map[string]any)["nack"])
	require.Equal(t, 9, parsed["hls"].(map[string]any)["window"])
	require.Equal(t, "3s", parsed["sfu"].(map[string]any)["grace"])
	for _, section := range []string{"log", "rtmp", "http", "webrtc", "sfu", "turn", "auth", "audio", "flv", "hls", "calls", "cluster", "limits"} {
		require.Contains(t, parsed, section)
	}
	out := filepath.Join(dir, "out.yaml")
	require.NoError(t, os.WriteFile(out, []byte(first), 0o644))
	second := print([]string{"-c", out})
	require.Equal(t, first, second)
}

// TestAppToken: `estuary token` prints a signed JWT (three dot-separated parts); a stray argument is a
// usage error (exit 2).
func TestAppToken(t *testing.T) {
	cmd := exec.Command(harness.Binary(t), "token", "live/test")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	require.Error(t, err)
	require.Equal(t, 2, cmd.ProcessState.ExitCode())
	require.Contains(t, stderr.String(), "usage")

	out, err := exec.Command(harness.Binary(t), "token", "-secret", "s", "-stream", "live/test", "-action", "publish", "-ttl", "1h").Output()
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSpace(string(out)), "."), 3, string(out))
}

// TestAppOriginWithoutRedis: an origin whose Redis is unreachable is alive (/healthz) but not ready
// (/readyz 503 naming the registry), and still stops with exit 0.
func TestAppOriginWithoutRedis(t *testing.T) {
	dead := harness.FreePort(t, "127.0.0.1") // nothing listens there
	n := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{
		"role":              "origin",
		"cluster.redis":     fmt.Sprintf("redis://127.0.0.1:%d/0", dead),
		"cluster.advertise": "http://127.0.0.1:1",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := n.Get(ctx, "/readyz")
	require.NoError(t, err)
	require.Equal(t, 503, code)
	require.Contains(t, string(body), "registry")
	code, _, err = n.Get(ctx, "/healthz")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	require.NoError(t, n.Stop())
}

// TestAppClusterStandalone: /api/v1/cluster of a standalone node lists itself from the in-memory registry.
func TestAppClusterStandalone(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := n.Get(ctx, "/api/v1/cluster")
	require.NoError(t, err)
	require.Equal(t, 200, code, string(body))
	var got struct {
		Code    int    `json:"code"`
		Server  string `json:"server"`
		Cluster struct {
			Role  string `json:"role"`
			Nodes []struct {
				NodeID string `json:"node_id"`
			} `json:"nodes"`
			Leases []any `json:"leases"`
		} `json:"cluster"`
	}
	require.NoError(t, json.Unmarshal(body, &got), string(body))
	require.Equal(t, "standalone", got.Cluster.Role)
	require.Len(t, got.Cluster.Nodes, 1)
	require.Equal(t, n.NodeID, got.Cluster.Nodes[0].NodeID)
	require.NotNil(t, got.Cluster.Leases)
}
