package cascade

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testRedis is a redis-server process started by a test on 127.0.0.1 and a free port, stopped by PID in
// t.Cleanup. Restart keeps the port (and, with --save ”, loses the data, like a crashed Redis).
type testRedis struct {
	t    *testing.T
	Addr string
	port int
	dir  string
	args []string // extra arguments (after the config file, if any)
	conf string   // config file content ("" for none)

	mu     sync.Mutex
	cmd    *exec.Cmd     // guarded by mu
	waitCh chan struct{} // closed when cmd exited; guarded by mu
}

func startTestRedis(t *testing.T, args ...string) *testRedis {
	t.Helper()
	return startTestRedisConf(t, "", args...)
}

// startTestRedisConf starts redis-server with a config file (Sentinel needs a writable one); the
// line "port {PORT}" in conf is filled in.
func startTestRedisConf(t *testing.T, conf string, args ...string) *testRedis {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is required (scripts/deps.sh installs it)")
	r := &testRedis{t: t, dir: t.TempDir(), args: args, conf: conf}
	for attempt := 0; ; attempt++ {
		r.port = freePort(t)
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
		if err := r.start(); err == nil {
			break
		} else if attempt == 3 {
			require.NoError(t, err)
		}
	}
	t.Cleanup(r.Stop)

	return r
}

// URL is the redis:// URL of the server.
func (r *testRedis) URL() string { return "redis://" + r.Addr + "/0" }

func (r *testRedis) start() error {
	var argv []string
	if r.conf != "" {
		path := filepath.Join(r.dir, "redis.conf")
		conf := strings.ReplaceAll(r.conf, "{PORT}", strconv.Itoa(r.port))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return err
		}
		argv = append(argv, path)
	}
	argv = append(argv, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no")
	argv = append(argv, r.args...)
	cmd := exec.Command("redis-server", argv...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %s", out.String())
		default:
		}
		if err := redisPing(r.Addr); err == nil || strings.Contains(err.Error(), "NOAUTH") {
			r.mu.Lock()
			r.cmd, r.waitCh = cmd, exited
			r.mu.Unlock()

			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited

	return fmt.Errorf("redis-server on %s did not answer PING: %s", r.Addr, out.String())
}

// Stop kills the server by PID and waits for it. Idempotent.
func (r *testRedis) Stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.waitCh
	r.cmd, r.waitCh = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart stops the server and starts a new one on the same port (empty).
func (r *testRedis) Restart() {
	r.t.Helper()
	r.Stop()
	require.NoError(r.t, r.start())
}

func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}

	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	return port
}
