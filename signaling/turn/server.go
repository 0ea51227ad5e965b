package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the TURN REST API is defined with HMAC-SHA1
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	pturn "github.com/pion/turn/v5"
)

// Config configures a Server. The zero value is valid: every field documents its default.
type Config struct {
	// Listen is the UDP and TCP address (turn.listen). Default ":3478". Port 0 picks a port free for
	// both.
	Listen string
	// Realm is the TURN realm. Default "estuary".
	Realm string
	// Secret signs credentials. Default: random per process (credentials then die with it).
	Secret string
	// PublicIP is the relay address put in allocations and in the ICE server URLs. Default: the
	// listen IP when it is a specific one, else the first non-loopback IPv4 of this host, else
	// 127.0.0.1.
	PublicIP string
	// DeniedPeers are CIDRs (or single IPs) a relay may never reach.
	DeniedPeers []string
	// AllowLoopback lets relays reach loopback addresses (tests on a loopback-only machine).
	AllowLoopback bool
	// Quota bounds the live allocations of one user (the "user" part of the username). Default 0:
	// unlimited.
	Quota int
	// CredentialTTL is how long handed-out credentials stay valid (every TURN request, refreshes
	// included, is checked against it, so it must outlast a call). Default 24h.
	CredentialTTL time.Duration
}

// Deps are the Server's collaborators, all optional.
type Deps struct {
	Logger *slog.Logger
}

// Server is a running TURN server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	srv     *pturn.Server
	udp     net.PacketConn
	tcp     net.Listener
	public  net.IP
	denied  []*net.IPNet
	secret  []byte
	mu      sync.Mutex
	allocs  map[string]int // live allocations per user; guarded by mu
	refused int            // permissions refused; guarded by mu
}

// New opens the UDP and TCP listeners and starts serving.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = ":3478"
	}
	if cfg.Realm == "" {
		cfg.Realm = "estuary"
	}
	if cfg.CredentialTTL <= 0 {
		cfg.CredentialTTL = 24 * time.Hour
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log.With("component", "turn"), allocs: map[string]int{}}
	if cfg.Secret == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		cfg.Secret = hex.EncodeToString(b[:])
		s.cfg.Secret = cfg.Secret
	}
	s.secret = []byte(cfg.Secret)
	for _, d := range cfg.DeniedPeers {
		n, err := parseNet(d)
		if err != nil {
			return nil, err
		}
		s.denied = append(s.denied, n)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen %q: %w", ErrBadConfig, cfg.Listen, err)
	}
	if s.public, err = publicIP(cfg.PublicIP, host); err != nil {
		return nil, err
	}
	if s.udp, s.tcp, err = listenBoth(cfg.Listen); err != nil {
		return nil, err
	}
	relayBind := host
	if relayBind == "" {
		relayBind = "0.0.0.0"
	}
	gen := func() pturn.RelayAddressGenerator {
		return &pturn.RelayAddressGeneratorStatic{RelayAddress: s.public, Address: relayBind}
	}
	s.srv, err = pturn.NewServer(pturn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: loggerFactory{s.log},
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.quota,
		EventHandler: pturn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, user, _ string, relay net.Addr, _ int) {
				s.mu.Lock()
				s.allocs[user]++
				s.mu.Unlock()
				s.log.Debug("allocation", "user", user, "relay", relay.String())
			},
			OnAllocationDeleted: func(_, _ net.Addr, _, user, _ string) {
				s.mu.Lock()
				if s.allocs[user]--; s.allocs[user] <= 0 {
					delete(s.allocs, user)
				}
				s.mu.Unlock()
			},
		},
		PacketConnConfigs: []pturn.PacketConnConfig{{
			PacketConn: s.udp, RelayAddressGenerator: gen(), PermissionHandler: s.permit,
		}},
		ListenerConfigs: []pturn.ListenerConfig{{
			Listener: s.tcp, RelayAddressGenerator: gen(), PermissionHandler: s.permit,
		}},
	})
	if err != nil {
		_ = s.udp.Close()
		_ = s.tcp.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.log.Info("listening", "addr", s.udp.LocalAddr().String(), "public_ip", s.public.String(),
		"allow_loopback", cfg.AllowLoopback, "quota", cfg.Quota)
	return s, nil
}

// Close stops the server and its listeners (allocations end).
func (s *Server) Close() error {
	return s.srv.Close()
}

// Addr is the UDP listen address (the TCP one has the same port).
func (s *Server) Addr() *net.UDPAddr { return s.udp.LocalAddr().(*net.UDPAddr) }

// Port is the listen port (UDP and TCP).
func (s *Server) Port() int { return s.Addr().Port }

// PublicIP is the relay address announced in allocations and URLs.
func (s *Server) PublicIP() net.IP { return s.public }

// Realm is the server's realm.
func (s *Server) Realm() string { return s.cfg.Realm }

// Allocations is the number of live allocations of user.
func (s *Server) Allocations(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocs[user]
}

// Credentials makes a username ("expiry:user", expiry in Unix seconds) and password valid for
// Config.CredentialTTL. user must not contain ':' (it is replaced by '_').
func (s *Server) Credentials(user string) (username, password string, expires time.Time) {
	expires = time.Now().Add(s.cfg.CredentialTTL)
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + strings.ReplaceAll(user, ":", "_")
	return username, Password(s.cfg.Secret, username), expires
}

// Password is the TURN REST API password of username: base64(HMAC-SHA1(secret, username)).
func Password(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	_, _ = mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// URLs are the server's ICE URLs for host (Config.PublicIP's address when host is ""): TURN over
// UDP and TCP, and STUN.
func (s *Server) URLs(host string) (turn []string, stun string) {
	if host == "" {
		host = s.public.String()
	}
	hp := net.JoinHostPort(host, strconv.Itoa(s.Port()))
	return []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}, "stun:" + hp
}

// authenticate is the TURN REST API check: username "expiry:user" not expired, key from the
// password HMAC. A refusal is answered 401 by pion.
func (s *Server) authenticate(ra *pturn.RequestAttributes) (string, []byte, bool) {
	exp, user, ok := strings.Cut(ra.Username, ":")
	if !ok || user == "" {
		s.log.Debug("refused: username is not expiry:user", "username", ra.Username, "remote_addr", addrString(ra.SrcAddr))
		return "", nil, false
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		s.log.Debug("refused: bad expiry", "username", ra.Username, "remote_addr", addrString(ra.SrcAddr))
		return "", nil, false
	}
	if time.Now().Unix() > t {
		s.log.Info("refused: expired credentials", "username", ra.Username, "remote_addr", addrString(ra.SrcAddr))
		return "", nil, false
	}
	pw := Password(s.cfg.Secret, ra.Username)
	return user, pturn.GenerateAuthKey(ra.Username, s.cfg.Realm, pw), true
}

// quota admits an allocation while user has fewer than Config.Quota live ones.
func (s *Server) quota(user, _ string, src net.Addr) bool {
	if s.cfg.Quota <= 0 {
		return true
	}
	s.mu.Lock()
	n := s.allocs[user]
	s.mu.Unlock()
	if n >= s.cfg.Quota {
		s.log.Info("refused: allocation quota", "user", user, "allocations", n, "remote_addr", addrString(src))
		return false
	}
	return true
}

// permit filters the peers a relay may reach.
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	reason := ""
	switch {
	case peer.IsUnspecified() || peer.IsMulticast():
		reason = "unspecified or multicast"
	case peer.IsLoopback() && !s.cfg.AllowLoopback:
		reason = "loopback (turn.allow_loopback is off)"
	default:
		for _, n := range s.denied {
			if n.Contains(peer) {
				reason = "in turn.denied_peers " + n.String()
				break
			}
		}
	}
	if reason == "" {
		return true
	}
	s.mu.Lock()
	s.refused++
	s.mu.Unlock()
	s.log.Info("refused peer", "peer", peer.String(), "reason", reason, "remote_addr", addrString(client))
	return false
}

// Refused is the number of peer permissions refused so far.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func parseNet(v string) (*net.IPNet, error) {
	if _, n, err := net.ParseCIDR(v); err == nil {
		return n, nil
	}
	ip := net.ParseIP(v)
	if ip == nil {
		return nil, fmt.Errorf("%w: denied peer %q is not a CIDR or IP", ErrBadConfig, v)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// publicIP picks the relay address.
func publicIP(configured, listenHost string) (net.IP, error) {
	if configured != "" {
		ip := net.ParseIP(configured)
		if ip == nil {
			return nil, fmt.Errorf("%w: public_ip %q is not an IP", ErrBadConfig, configured)
		}
		return ip, nil
	}
	if ip := net.ParseIP(listenHost); ip != nil && !ip.IsUnspecified() {
		return ip, nil
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.To4(), nil
			}
		}
	}
	return net.IPv4(127, 0, 0, 1).To4(), nil
}

// listenBoth opens UDP and TCP on the same address; port 0 tries ports until both are free.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	var lastErr error
	for range 20 {
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: udp %s: %w", ErrListen, addr, err)
		}
		p := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		lastErr = err
		if port != "0" && port != "" {
			break
		}
	}
	return nil, nil, fmt.Errorf("%w: tcp %s: %w", ErrListen, addr, errors.Join(lastErr))
}
