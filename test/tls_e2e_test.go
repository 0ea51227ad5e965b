//go:build e2e

package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// tlsTestCert writes a fresh self-signed certificate for 127.0.0.1 / localhost (never committed) and
// returns the file paths and a pool trusting it.
func tlsTestCert(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "estuary test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certPath, keyPath, pool
}

type tlsNode struct {
	httpsURL string
	rtmpsURL string
	client   *http.Client
	pool     *x509.CertPool
	logPath  string
}

// startTLSNode runs the binary with HTTPS on http.listen and RTMPS on rtmp.tls_listen (no plain RTMP).
func startTLSNode(t *testing.T) tlsNode {
	t.Helper()
	dir := t.TempDir()
	cert, key, pool := tlsTestCert(t, dir)
	ip := "127.0.0.1"
	hp, rp := harness.FreePort(t, ip), harness.FreePort(t, ip)
	up, tp := harness.FreePort(t, ip), harness.FreePort(t, ip)
	cfg := fmt.Sprintf(`node_id: tls-node
shutdown_timeout: 5s
log: {level: debug}
http: {listen: "%[1]s:%[2]d", srs_api_listen: "", tls_cert: %[6]q, tls_key: %[7]q}
rtmp: {listen: "", tls_listen: "%[1]s:%[3]d", tls_cert: %[6]q, tls_key: %[7]q}
webrtc: {listen_ip: %[1]s, public_ips: [%[1]s], udp_port: %[4]d, tcp_port: %[5]d}
turn: {enabled: false, listen: ""}
`, ip, hp, rp, up, tp, cert, key)
	cfgPath := filepath.Join(dir, "estuary.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	logPath := filepath.Join(dir, "estuary.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(harness.Binary(t), "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(8 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("tls node log:\n%s", tail(string(b), 6000))
		}
	})
	n := tlsNode{
		httpsURL: "https://" + net.JoinHostPort(ip, strconv.Itoa(hp)),
		rtmpsURL: "rtmps://" + net.JoinHostPort(ip, strconv.Itoa(rp)),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}},
		pool:    pool,
		logPath: logPath,
	}
	start := time.Now()
	for {
		resp, err := n.client.Get(n.httpsURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("TLS node healthy after %v", time.Since(start).Round(time.Millisecond))
				break
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("tls node exited:\n%s", b)
		default:
		}
		require.Less(t, time.Since(start), 20*time.Second, "TLS node not healthy")
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestTLS: ffmpeg publishes over rtmps:// and ffprobe reads it back over rtmps://; the HTTPS listener
// speaks HTTP/2 (and HTTP/1.1), serves HTTP-FLV, and its websocket works over wss://; Chromium
// publishes and plays through https:// pages with the test's self-signed certificate.
func TestTLS(t *testing.T) {
	n := startTLSNode(t)
	key := "live/tls"
	pub := harness.FFmpegPush(t, n.rtmpsURL+"/"+key, harness.FFmpegArgs{GOP: 25})
	start := time.Now()
	var out string
	for {
		o, err := authProbe(t, n.rtmpsURL+"/"+key)
		if err == nil && strings.Contains(o, "h264") {
			out = o
			break
		}
		select {
		case <-pub.Done():
			t.Fatalf("ffmpeg rtmps publish ended: %s", pub.Stderr())
		default:
		}
		require.Less(t, time.Since(start), 20*time.Second, "ffprobe over rtmps: %v %s", err, o)
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("rtmps: ffprobe read %q back %v after the push started", strings.Fields(out), time.Since(start).Round(time.Millisecond))
	require.Contains(t, out, "aac")

	t.Run("https http2 and http1", func(t *testing.T) {
		resp, err := n.client.Get(n.httpsURL + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "HTTP/2.0", resp.Proto)
		h1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: n.pool},
			TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}}}
		resp, err = h1.Get(n.httpsURL + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "HTTP/1.1", resp.Proto)
		// HTTP-FLV over HTTP/2.
		resp, err = n.client.Get(n.httpsURL + "/" + key + ".flv")
		require.NoError(t, err)
		head := make([]byte, 3)
		_, err = io.ReadFull(resp.Body, head)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, "FLV", string(head))
		require.Equal(t, "HTTP/2.0", resp.Proto)
	})

	t.Run("wss", func(t *testing.T) {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: n.pool}, HandshakeTimeout: 5 * time.Second}
		ws, resp, err := d.Dial("wss"+strings.TrimPrefix(n.httpsURL, "https")+"/ws/call?room=tlsroom", nil)
		require.NoError(t, err)
		resp.Body.Close()
		defer ws.Close()
		require.NoError(t, ws.WriteJSON(map[string]string{"type": "join", "name": "a"}))
		require.Equal(t, "joined", wsRead(t, ws, 3*time.Second).Type)
	})

	t.Run("chromium https", func(t *testing.T) {
		toneFile := harness.BrowserToneWAV(t, t.TempDir(), 440, 30)
		b := harness.NewBrowser(t, harness.BrowserOptions{FakeAudioFile: toneFile})
		wkey := "live/tls-browser"
		pubPage := b.NewPage()
		defer pubPage.Close()
		require.NoError(t, pubPage.IgnoreCertificateErrors())
		require.NoError(t, pubPage.Open(fmt.Sprintf("%s/publish.html?stream=%s&codec=H264&autostart=1&audio=raw", n.httpsURL, wkey)))
		took, err := pubPage.WaitFor(`window.estuary.state === 'live'`, 15*time.Second)
		require.NoError(t, err, "console: %v", pubPage.Console())
		t.Logf("https publisher live after %v", took.Round(time.Millisecond))
		var proto string
		require.NoError(t, pubPage.Eval(`location.protocol + ' ' + window.isSecureContext`, &proto))
		require.Equal(t, "https: true", proto)
		player := b.NewPage()
		defer player.Close()
		require.NoError(t, player.IgnoreCertificateErrors())
		require.NoError(t, player.Open(fmt.Sprintf("%s/play.html?stream=%s&autoplay=1", n.httpsURL, wkey)))
		browserPlayChecks(t, player, "H264")
	})
}
