package turn

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pturn "github.com/pion/turn/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Secret == "" {
		cfg.Secret = "test-secret"
	}
	s, err := New(cfg, Deps{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// newClient makes a pion/turn client over UDP to s.
func newClient(t *testing.T, s *Server, user, pass string) *pturn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c, err := pturn.NewClient(&pturn.ClientConfig{
		STUNServerAddr: s.Addr().String(), TURNServerAddr: s.Addr().String(),
		Username: user, Password: pass, Realm: s.Realm(), Conn: conn, RTO: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, c.Listen())
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c
}

func turnCode(err error) int {
	if te, ok := errors.AsType[*stun.TurnError](err); ok {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

func allocate(c *pturn.Client) (net.PacketConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.AllocateWithContext(ctx)
}

func TestCredentials(t *testing.T) {
	s := newServer(t, Config{CredentialTTL: time.Hour})
	user, pass, exp := s.Credentials("alice:x")
	require.Equal(t, strconv.FormatInt(exp.Unix(), 10)+":alice_x", user)
	require.Equal(t, Password("test-secret", user), pass)
	require.InDelta(t, time.Hour.Seconds(), time.Until(exp).Seconds(), 5)
	// A known vector (computed with Python hmac): base64(HMAC-SHA1("secret", "1700000000:bob")).
	require.Equal(t, "YeMuUjjOaxvglmPbYS9o30UEIYg=", Password("secret", "1700000000:bob"))
	urls, stunURL := s.URLs("")
	port := strconv.Itoa(s.Port())
	require.Equal(t, []string{"turn:127.0.0.1:" + port + "?transport=udp", "turn:127.0.0.1:" + port + "?transport=tcp"}, urls)
	require.Equal(t, "stun:127.0.0.1:"+port, stunURL)
}

func TestAuth(t *testing.T) {
	s := newServer(t, Config{})
	good, goodPass, _ := s.Credentials("alice")
	expired := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10) + ":alice"
	for _, tc := range []struct {
		name       string
		user, pass string
		code       int // 0: allocation succeeds
	}{
		{name: "good credentials", user: good, pass: goodPass},
		{name: "wrong password", user: good, pass: "not-the-password", code: 401},
		{name: "expired, correctly signed", user: expired, pass: Password("test-secret", expired), code: 401},
		{name: "signed with another secret", user: good, pass: Password("other", good), code: 401},
		{name: "username without expiry", user: "alice", pass: Password("test-secret", "alice"), code: 401},
		{name: "username without user", user: "99999999999:", pass: Password("test-secret", "99999999999:"), code: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, s, tc.user, tc.pass)
			relay, err := allocate(c)
			if tc.code == 0 {
				require.NoError(t, err)
				require.NoError(t, relay.Close())
				return
			}
			require.Error(t, err)
			require.Equal(t, tc.code, turnCode(err), "error: %v", err)
			t.Logf("refused: %v", err)
		})
	}
}

// echoPeer answers every datagram with "echo:"+payload.
func echoPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDP(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return pc
}

func TestRelayData(t *testing.T) {
	s := newServer(t, Config{AllowLoopback: true, PublicIP: "127.0.0.1"})
	peer := echoPeer(t)
	user, pass, _ := s.Credentials("alice")
	c := newClient(t, s, user, pass)
	relay, err := allocate(c)
	require.NoError(t, err)
	defer relay.Close()
	require.Equal(t, "127.0.0.1", relay.LocalAddr().(*net.UDPAddr).IP.String(), "relay address is turn.public_ip")
	require.Equal(t, 1, s.Allocations("alice"))

	start := time.Now()
	_, err = relay.WriteTo([]byte("hello"), peer.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, relay.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 1500)
	n, from, err := relay.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "echo:hello", string(buf[:n]))
	require.Equal(t, peer.LocalAddr().String(), from.String())
	t.Logf("relayed round trip through TURN in %v", time.Since(start).Round(time.Microsecond))
}

func TestPeerFilter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		peer    string
		allowed bool
	}{
		{name: "loopback refused by default", peer: "127.0.0.1", allowed: false},
		{name: "other loopback refused", peer: "127.0.0.7", allowed: false},
		{name: "loopback allowed with allow_loopback", cfg: Config{AllowLoopback: true}, peer: "127.0.0.1", allowed: true},
		{name: "denied CIDR", cfg: Config{AllowLoopback: true, DeniedPeers: []string{"127.0.0.0/24"}}, peer: "127.0.0.1", allowed: false},
		{name: "denied single IP", cfg: Config{DeniedPeers: []string{"10.1.2.3"}}, peer: "10.1.2.3", allowed: false},
		{name: "not denied", cfg: Config{DeniedPeers: []string{"10.1.2.3"}}, peer: "10.1.2.4", allowed: true},
		{name: "unspecified refused", cfg: Config{AllowLoopback: true}, peer: "0.0.0.0", allowed: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.cfg)
			require.Equal(t, tc.allowed, s.permit(nil, net.ParseIP(tc.peer)))
		})
	}
}

// TestLoopbackRefused: with allow_loopback off, a real client's CreatePermission for a loopback
// peer is refused (403) and nothing reaches the peer.
func TestLoopbackRefused(t *testing.T) {
	s := newServer(t, Config{PublicIP: "127.0.0.1"})
	peer := echoPeer(t)
	user, pass, _ := s.Credentials("mallory")
	c := newClient(t, s, user, pass)
	relay, err := allocate(c)
	require.NoError(t, err)
	defer relay.Close()
	err = c.CreatePermission(peer.LocalAddr())
	require.Error(t, err)
	require.Equal(t, 403, turnCode(err), "error: %v", err)
	require.GreaterOrEqual(t, s.Refused(), 1)
	t.Logf("refused: %v", err)
}

func TestQuota(t *testing.T) {
	s := newServer(t, Config{Quota: 1})
	user, pass, _ := s.Credentials("bob")
	c1 := newClient(t, s, user, pass)
	r1, err := allocate(c1)
	require.NoError(t, err)
	defer r1.Close()
	c2 := newClient(t, s, user, pass)
	_, err = allocate(c2)
	require.Error(t, err)
	require.Equal(t, 486, turnCode(err), "error: %v", err)
	// Another user is not affected.
	u3, p3, _ := s.Credentials("carol")
	r3, err := allocate(newClient(t, s, u3, p3))
	require.NoError(t, err)
	require.NoError(t, r3.Close())
}

func TestTCPListener(t *testing.T) {
	s := newServer(t, Config{})
	conn, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	// A STUN binding request over TCP gets a success answer with our mapped address.
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	_, err = conn.Write(m.Raw)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	res := &stun.Message{Raw: buf[:n]}
	require.NoError(t, res.Decode())
	require.Equal(t, stun.BindingSuccess, res.Type)
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{name: "bad denied peer", cfg: Config{Listen: "127.0.0.1:0", DeniedPeers: []string{"nope"}}},
		{name: "bad public ip", cfg: Config{Listen: "127.0.0.1:0", PublicIP: "host"}},
		{name: "bad listen", cfg: Config{Listen: "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, Deps{})
			require.ErrorIs(t, err, ErrBadConfig)
		})
	}
}

// FuzzAuthenticate: any username is parsed without panic, and accepted only when it is
// "<expiry>:<user>" with a future expiry; the key then is the one the client derives from the
// password Credentials would give.
func FuzzAuthenticate(f *testing.F) {
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for _, seed := range []string{future + ":alice", "1:alice", "alice", future + ":", ":alice", future + ":a:b", "-5:x", "99999999999999999999:x", ""} {
		f.Add(seed)
	}
	s := &Server{cfg: Config{Secret: "fuzz", Realm: "estuary"}, log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, username string) {
		user, key, ok := s.authenticate(&pturn.RequestAttributes{Username: username, Realm: "estuary"})
		if !ok {
			require.Nil(t, key)
			return
		}
		exp, rest, found := strings.Cut(username, ":")
		require.True(t, found)
		require.Equal(t, rest, user)
		require.NotEmpty(t, user)
		n, err := strconv.ParseInt(exp, 10, 64)
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, time.Now().Unix()-1) // not expired when checked
		require.Equal(t, pturn.GenerateAuthKey(username, "estuary", Password("fuzz", username)), key)
	})
}
