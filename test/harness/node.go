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
	// HTTPPort and RTMPPort fix the HTTP and RTMP listen ports on Addr (0: a free port each). Use
	// them only with an address of the test's own (127.0.0.x), like the cluster topology's nodes.
	HTTPPort, RTMPPort int
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

	bin  string
	args []string
	env  []string

	mu      sync.Mutex // guards cmd, done, waitErr, stopped (replaced by Restart)
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stopped *sync.Once
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
	n := &Node{t: t, Addr: ip, NodeID: opts.NodeID}
	n.HTTPPort, n.RTMPPort = opts.HTTPPort, opts.RTMPPort
	if n.HTTPPort == 0 {
		n.HTTPPort = FreePort(t, ip)
	}
	if n.RTMPPort == 0 {
		n.RTMPPort = FreePort(t, ip)
	}
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
	// Relays need this node's real HTTP URL: default cluster.advertise to it.
	if cl, _ := cfg["cluster"].(map[string]any); cl == nil || cl["advertise"] == nil {
		setPath(cfg, "cluster.advertise", n.HTTPURL)
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
	n.bin, n.args, n.env = bin, append([]string{"-c", n.ConfigPath}, opts.Args...), append(os.Environ(), opts.Env...)
	if err := n.launch(); err != nil {
		t.Fatalf("start estuary: %v", err)
	}
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

// launch starts the process (appending to the log file).
func (n *Node) launch() error {
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, n.args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = n.env
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.stopped = cmd, done, &sync.Once{}
	n.PID = cmd.Process.Pid
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		n.waitErr = err
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

// Restart stops the node (SIGTERM) and starts it again with the same config, ports and log file,
// then waits for /healthz.
func (n *Node) Restart() {
	n.t.Helper()
	_ = n.Stop()
	if err := n.launch(); err != nil {
		n.t.Fatalf("restart estuary: %v", err)
	}
	if err := n.waitHealthy(20 * time.Second); err != nil {
		_ = n.Kill()
		n.t.Fatalf("node %s: %v\nlog:\n%s", n.NodeID, err, tail(n.Logs(), 8000))
	}
}

// state returns the current process's handles.
func (n *Node) state() (*exec.Cmd, chan struct{}, *sync.Once) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd, n.done, n.stopped
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.waitErr
}

func (n *Node) waitHealthy(timeout time.Duration) error {
	_, done, _ := n.state()
	start := time.Now()
	client := &http.Client{Timeout: time.Second}
	for time.Since(start) < timeout {
		select {
		case <-done:
			return fmt.Errorf("exited before it was healthy: %v", n.exitErr())
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
func (n *Node) Done() <-chan struct{} {
	_, done, _ := n.state()
	return done
}

// ExitCode is the process's exit code (-1 while it runs or when killed by a signal).
func (n *Node) ExitCode() int {
	cmd, done, _ := n.state()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Signal sends sig to the process.
func (n *Node) Signal(sig os.Signal) error {
	cmd, _, _ := n.state()
	return cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits up to 5 s, then SIGKILL. It returns the process's exit error (nil for
// exit 0). Idempotent.
func (n *Node) Stop() error {
	cmd, done, once := n.state()
	once.Do(func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.t.Logf("node %s ignored SIGTERM for 5s: killing", n.NodeID)
			_ = cmd.Process.Kill()
			<-done
		}
	})
	<-done
	return n.exitErr()
}

// Kill sends SIGKILL and waits for the process.
func (n *Node) Kill() error {
	cmd, done, _ := n.state()
	select {
	case <-done:
		return n.exitErr()
	default:
	}
	_ = cmd.Process.Kill()
	<-done
	return n.exitErr()
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
