//go:build e2e

package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RedisServerPath is Debian's redis-server, installed by scripts/deps.sh.
const RedisServerPath = "/usr/bin/redis-server"

// Redis is a redis-server started by a test (no persistence), stopped by PID at cleanup.
type Redis struct {
	t    testing.TB
	IP   string
	Port int
	Addr string // "ip:port"
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd     // guarded by mu; nil while stopped
	exited chan struct{} // closed when cmd has exited; guarded by mu
	logs   *redisLog
}

// redisLog collects the server's output (all its runs).
type redisLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *redisLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.buf.Write(p)
}

func (l *redisLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.buf.String()
}

// StartRedis starts redis-server on 127.0.0.1 and a free port and waits until it answers PING. A
// missing redis-server fails the test.
func StartRedis(t testing.TB) *Redis {
	t.Helper()

	return StartRedisAt(t, "127.0.0.1")
}

// StartRedisAt is StartRedis on another loopback address (127.0.0.x).
func StartRedisAt(t testing.TB, ip string) *Redis {
	t.Helper()
	if _, err := exec.LookPath(RedisServerPath); err != nil {
		t.Fatalf("redis-server is required (scripts/deps.sh installs it): %v", err)
	}
	r := &Redis{t: t, IP: ip, dir: t.TempDir(), logs: &redisLog{}}
	var err error
	for range 3 {
		r.Port = FreePort(t, ip)
		r.Addr = net.JoinHostPort(ip, strconv.Itoa(r.Port))
		if err = r.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(r.Stop)

	return r
}

// URL is the cluster.redis URL of the server ("redis://ip:port/0").
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// PID is the running server's process id (0 while stopped).
func (r *Redis) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}

	return r.cmd.Process.Pid
}

// Logs returns the server's output so far.
func (r *Redis) Logs() string { return r.logs.String() }

func (r *Redis) start() error {
	cmd := exec.Command(RedisServerPath, "--port", strconv.Itoa(r.Port), "--bind", r.IP,
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited: %s", r.Addr, tail(r.logs.String(), 2000))
		default:
		}
		if RedisPing(r.Addr) == nil {
			r.mu.Lock()
			r.cmd, r.exited = cmd, exited
			r.mu.Unlock()

			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited

	return fmt.Errorf("redis-server on %s did not answer PING within 5s: %s", r.Addr, tail(r.logs.String(), 2000))
}

// Stop kills the server by PID (as a crash would) and waits for it to exit. Idempotent.
func (r *Redis) Stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd, r.exited = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart stops the server and starts a fresh, empty one on the same address.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart redis-server: %v", err)
	}
}

// RedisPing sends PING to addr and expects +PONG.
func RedisPing(addr string) error {
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
		return fmt.Errorf("redis PING answered %q", line)
	}

	return nil
}
