//go:build e2e

package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// NodeOptions configures StartNode. The zero value starts a standalone node on 127.0.0.1.
type NodeOptions struct {
	// Addr is the loopback address every listener binds (default "127.0.0.1"); use 127.0.0.x to run
	// several nodes with their own addresses.
	Addr string
	// Config is YAML merged over the generated config (maps merge key by key; other values replace).
	Config string
	// Set overrides single keys by dotted path, after Config: {"sfu.grace": "2s", "role": "edge"}.
	Set map[string]any
	// SRSAPI turns http.srs_api_listen on, on a free port of Addr (off by default).
	SRSAPI bool
	// Env is added to the process environment (e.g. "ESTUARY_LOG_LEVEL=debug").
	Env []string
	// Args are extra command-line arguments.
	Args []string
	// NodeID defaults to "node-<n>".
	NodeID string
	// ReadyTimeout bounds the wait for /healthz (default 20s).
	ReadyTimeout time.Duration
}

// Node is a running estuary process.
type Node struct {
	t          testing.TB
	Addr       string // the loopback address its listeners bind
	NodeID     string
	HTTPURL    string // "http://127.0.0.1:PORT"
	HTTPPort   int
	RTMPAddr   string // "127.0.0.1:PORT"
	RTMPPort   int
	UDPPort    int    // WebRTC ICE UDP mux
	TCPPort    int    // WebRTC ICE-TCP
	SRSAPIURL  string // "" unless NodeOptions.SRSAPI
	SRSAPIPort int
	ConfigPath string
	LogPath    string
	PID        int

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stopped sync.Once
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	nodeSeq   int
	nodeMu    sync.Mutex
)

// moduleRoot is the repository root (this file is test/harness/node.go).
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the estuary binary: $ESTUARY_BIN, or ./cmd/estuary built once per test binary.
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("ESTUARY_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("ESTUARY_BIN=%s: %v", bin, err)
		}
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "estuary-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "estuary")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/estuary")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/estuary: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

var (
	portMu   sync.Mutex
	portUsed = map[int]bool{}
)

// FreePort returns a port free for both TCP and UDP on ip, never handed out twice in this process.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("free port on %s: %v", ip, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		if portUsed[port] {
			continue
		}
		portUsed[port] = true
		return port
	}
	t.Fatalf("no free TCP+UDP port on %s", ip)
	return 0
}

// StartNode starts estuary with a generated config (free ports on opts.Addr, TURN off, SRS API off
// unless asked), waits for /healthz and stops it (SIGTERM, then SIGKILL after 5 s) at cleanup.
func StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	bin := Binary(t)
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1"
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 20 * time.Second
	}
	if opts.NodeID == "" {
		nodeMu.Lock()
		nodeSeq++
		opts.NodeID = fmt.Sprintf("node-%d", nodeSeq)
		nodeMu.Unlock()
	}
	ip := opts.Addr
	n := &Node{t: t, Addr: ip, NodeID: opts.NodeID, done: make(chan struct{})}
	n.HTTPPort = FreePort(t, ip)
	n.RTMPPort = FreePort(t, ip)
	n.UDPPort = FreePort(t, ip)
	n.TCPPort = FreePort(t, ip)
	n.HTTPURL = "http://" + net.JoinHostPort(ip, strconv.Itoa(n.HTTPPort))
	n.RTMPAddr = net.JoinHostPort(ip, strconv.Itoa(n.RTMPPort))
	srs := ""
	if opts.SRSAPI {
		n.SRSAPIPort = FreePort(t, ip)
		srs = net.JoinHostPort(ip, strconv.Itoa(n.SRSAPIPort))
		n.SRSAPIURL = "http://" + srs
	}
	cfg := map[string]any{
		"node_id":          opts.NodeID,
		"shutdown_timeout": "5s",
		"log":              map[string]any{"level": "debug", "format": "text"},
		"http":             map[string]any{"listen": net.JoinHostPort(ip, strconv.Itoa(n.HTTPPort)), "srs_api_listen": srs},
		"rtmp":             map[string]any{"listen": n.RTMPAddr, "tls_listen": ""},
		"webrtc": map[string]any{
			"listen_ip": ip, "public_ips": []any{ip}, "udp_port": n.UDPPort, "tcp_port": n.TCPPort,
		},
		"turn": map[string]any{"enabled": false, "listen": ""},
	}
	if opts.Config != "" {
		var over map[string]any
		if err := yaml.Unmarshal([]byte(opts.Config), &over); err != nil {
			t.Fatalf("NodeOptions.Config: %v", err)
		}
		mergeMaps(cfg, over)
	}
	for k, v := range opts.Set {
		setPath(cfg, k, v)
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("node config: %v", err)
	}
	dir := t.TempDir()
	n.ConfigPath = filepath.Join(dir, "estuary.yaml")
	n.LogPath = filepath.Join(dir, "estuary.log")
	if err := os.WriteFile(n.ConfigPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(n.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-c", n.ConfigPath}, opts.Args...)
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout = logf
	n.cmd.Stderr = logf
	n.cmd.Env = append(os.Environ(), opts.Env...)
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start estuary: %v", err)
	}
	n.PID = n.cmd.Process.Pid
	go func() {
		n.waitErr = n.cmd.Wait()
		logf.Close()
		close(n.done)
	}()
	t.Cleanup(func() {
		_ = n.Stop()
		if t.Failed() {
			t.Logf("node %s log (%s):\n%s", n.NodeID, n.LogPath, tail(n.Logs(), 8000))
		}
	})
	if err := n.waitHealthy(opts.ReadyTimeout); err != nil {
		_ = n.Kill()
		t.Fatalf("node %s: %v\nconfig:\n%s\nlog:\n%s", n.NodeID, err, data, tail(n.Logs(), 8000))
	}
	return n
}

func (n *Node) waitHealthy(timeout time.Duration) error {
	start := time.Now()
	client := &http.Client{Timeout: time.Second}
	for time.Since(start) < timeout {
		select {
		case <-n.done:
			return fmt.Errorf("exited before it was healthy: %v", n.waitErr)
		default:
		}
		resp, err := client.Get(n.HTTPURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				n.t.Logf("node %s healthy after %v (pid %d, %s)", n.NodeID, time.Since(start).Round(time.Millisecond), n.PID, n.HTTPURL)
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not healthy within %v", timeout)
}

// RTMPURL is rtmp://ADDR/{key} for a stream key "app/stream".
func (n *Node) RTMPURL(key string) string { return "rtmp://" + n.RTMPAddr + "/" + key }

// Logs returns what the process has logged so far.
func (n *Node) Logs() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// Done is closed when the process has exited.
func (n *Node) Done() <-chan struct{} { return n.done }

// ExitCode is the process's exit code (-1 while it runs or when killed by a signal).
func (n *Node) ExitCode() int {
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Signal sends sig to the process.
func (n *Node) Signal(sig os.Signal) error { return n.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits up to 5 s, then SIGKILL. It returns the process's exit error (nil for
// exit 0). Idempotent.
func (n *Node) Stop() error {
	n.stopped.Do(func() {
		select {
		case <-n.done:
			return
		default:
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			n.t.Logf("node %s ignored SIGTERM for 5s: killing", n.NodeID)
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	})
	<-n.done
	return n.waitErr
}

// Kill sends SIGKILL and waits for the process.
func (n *Node) Kill() error {
	select {
	case <-n.done:
		return n.waitErr
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	return n.waitErr
}

// Get fetches path from the node's HTTP server and returns status and body.
func (n *Node) Get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTPURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), err
}

// mergeMaps merges src into dst: nested maps key by key, everything else replaced.
func mergeMaps(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeMaps(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// setPath sets a dotted key ("sfu.grace") in m, making intermediate maps.
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
