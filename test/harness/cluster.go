//go:build e2e

package harness

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ClusterConfig reads a file of the project's configs/ directory (configs/haproxy.cfg, nginx.conf).
func ClusterConfig(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(), "configs", name))
	if err != nil {
		t.Fatalf("configs/%s: %v", name, err)
	}
	return string(b)
}

// ClusterSubstitute replaces each old string of pairs (old1, new1, old2, new2...) in text, failing
// the test when one is absent (the config changed under the test).
func ClusterSubstitute(t testing.TB, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("config has no %q to substitute", pairs[i])
		}
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	return text
}

// ClusterProc is a proxy process (haproxy, nginx) started by a test; it is killed by PID at cleanup.
type ClusterProc struct {
	Name string
	PID  int
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
	out  *ffBuffer
}

// Output is what the process wrote to stdout and stderr.
func (p *ClusterProc) Output() string { return p.out.String() }

// Stop kills the process (SIGTERM, SIGKILL after 3 s) and waits for it. Idempotent.
func (p *ClusterProc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func startClusterProc(t testing.TB, name, dir, waitAddr string, args ...string) *ClusterProc {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (scripts/deps.sh): %v", name, err)
	}
	p := &ClusterProc{Name: name, Dir: dir, done: make(chan struct{}), out: &ffBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.PID = p.cmd.Process.Pid
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", waitAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			t.Logf("%s listening on %s (pid %d)", name, waitAddr, p.PID)
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %s", name, p.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s: %s", name, waitAddr, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartHAProxy runs haproxy in the foreground with the config text, waiting for listen (host:port).
func StartHAProxy(t testing.TB, config, listen string) *ClusterProc {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return startClusterProc(t, "haproxy", dir, listen, "-db", "-f", path)
}

// StartNginx runs nginx in the foreground with the config text (prefix, pid and error log in a
// temporary directory), waiting for listen (host:port).
func StartNginx(t testing.TB, config, listen string) *ClusterProc {
	t.Helper()
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755) // nginx workers run as another user
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return startClusterProc(t, "nginx", dir, listen, "-p", dir, "-c", path,
		"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+"; error_log "+filepath.Join(dir, "logs", "error.log")+" warn;")
}
