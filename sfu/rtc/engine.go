package rtc

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// DefaultPort is the default UDP and TCP port of the ICE muxes (webrtc.udp_port, webrtc.tcp_port).
const DefaultPort = 8000

// Config configures an Engine. The zero value is valid: every field documents its default.
type Config struct {
	// ListenIP is the address the ICE UDP and TCP muxes bind ("" = every interface). When set, only
	// this address is advertised in host candidates (unless PublicIPs replace it).
	ListenIP string
	// UDPPort is the ICE UDP mux port shared by every PeerConnection. Default 8000.
	UDPPort int
	// TCPPort is the ICE-TCP (passive) port shared by every PeerConnection. Default 8000.
	TCPPort int
	// NoTCP turns ICE-TCP off. Default: on.
	NoTCP bool
	// PublicIPs replace the host candidates' addresses (NAT 1:1, webrtc.public_ips). Default none.
	PublicIPs []string
	// ICEServers are the STUN/TURN servers handed to clients (WHIP/WHEP Link headers, pages). The
	// server itself gathers host candidates only. Default none.
	ICEServers []webrtc.ICEServer
	// NoNACK turns off NACK generation (publishers) and retransmission (viewers). Default: NACK on.
	NoNACK bool
	// NoTWCC turns off transport-wide congestion control feedback. Default: TWCC on.
	NoTWCC bool
	// OpusStereo registers Opus with stereo=1;sprop-stereo=1. Default: mono fmtp.
	OpusStereo bool
	// NoBatch turns off batched sends: each packet to a viewer is its own system call (see
	// batchconn.go). Default: batched.
	NoBatch bool
	// NoDirect keeps viewers' RTP on pion's write path (interceptors, SRTP session, ICE) instead of
	// encrypting it with keys taken from the DTLS connection and handing it to the socket (direct.go).
	// Default: direct, when batching is on.
	NoDirect bool
	// NoGSO keeps batching but sends a batch's datagrams one by one instead of with UDP GSO.
	// Default: GSO where the kernel has it.
	NoGSO bool
	// ICEDisconnectedTimeout is how long without traffic before ICE is "disconnected". Default 5s.
	ICEDisconnectedTimeout time.Duration
	// ICEFailedTimeout is how long after "disconnected" ICE fails (and the session is closed).
	// Default 10s.
	ICEFailedTimeout time.Duration
}

// Deps are the Engine's collaborators. All are optional.
type Deps struct {
	Logger *slog.Logger
}

// Engine makes PeerConnections that share one ICE UDP mux and one ICE-TCP mux.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	lf       pionLoggerFactory
	udpMux   ice.UDPMux
	sender   *sender
	srs      *srScheduler // every server PeerConnection's sender reports
	conns    []*batchConn // the ICE UDP mux's sockets
	tcpMux   ice.TCPMux
	udpAddr  *net.UDPAddr
	tcpAddr  *net.TCPAddr
	loopback bool
}

// NewEngine binds the ICE muxes and returns the engine. Close releases them.
func NewEngine(cfg Config, deps Deps) (*Engine, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "rtc")
	if cfg.UDPPort == 0 {
		cfg.UDPPort = DefaultPort
	}
	if cfg.TCPPort == 0 {
		cfg.TCPPort = DefaultPort
	}
	if cfg.ICEDisconnectedTimeout <= 0 {
		cfg.ICEDisconnectedTimeout = 5 * time.Second
	}
	if cfg.ICEFailedTimeout <= 0 {
		cfg.ICEFailedTimeout = 10 * time.Second
	}
	e := &Engine{cfg: cfg, log: log, lf: pionLoggerFactory{log: log}, sender: newSender(!cfg.NoGSO)}

	var listenIP net.IP
	if cfg.ListenIP != "" {
		listenIP = net.ParseIP(cfg.ListenIP)
		if listenIP == nil {
			return nil, fmt.Errorf("%w: listen_ip %q is not an IP address", ErrBadConfig, cfg.ListenIP)
		}
		e.loopback = listenIP.IsLoopback()
	}
	for _, p := range cfg.PublicIPs {
		ip := net.ParseIP(p)
		if ip == nil {
			return nil, fmt.Errorf("%w: public_ips: %q is not an IP address", ErrBadConfig, p)
		}
		if ip.IsLoopback() {
			e.loopback = true
		}
	}

	ips := []net.IP{listenIP}
	if listenIP == nil {
		var err error
		if ips, err = localIPs(e.loopback); err != nil {
			return nil, fmt.Errorf("rtc: ice udp: %w", err)
		}
	}
	muxes := make([]ice.UDPMux, 0, len(ips))
	closeMuxes := func() {
		for _, m := range muxes {
			_ = m.Close()
		}
	}
	for _, ip := range ips {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: cfg.UDPPort})
		if err != nil {
			closeMuxes()
			return nil, fmt.Errorf("rtc: ice udp listen on %s: %w", net.JoinHostPort(ip.String(), strconv.Itoa(cfg.UDPPort)), err)
		}
		// Every viewer's packets leave through this socket: room for a frame to many viewers at once
		// (the kernel caps it at net.core.wmem_max / rmem_max).
		_ = conn.SetWriteBuffer(4 << 20)
		_ = conn.SetReadBuffer(4 << 20)
		bc := newBatchConn(conn, e.sender)
		e.conns = append(e.conns, bc)
		muxes = append(muxes, ice.NewUDPMuxDefault(ice.UDPMuxParams{Logger: e.lf.NewLogger("ice-udp-mux"), UDPConn: bc}))
	}
	if len(muxes) == 1 {
		e.udpMux = muxes[0]
		e.udpAddr, _ = e.conns[0].LocalAddr().(*net.UDPAddr)
	} else {
		e.udpMux = ice.NewMultiUDPMuxDefault(muxes...)
		e.udpAddr = &net.UDPAddr{Port: cfg.UDPPort}
	}

	if !cfg.NoTCP {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			_ = e.udpMux.Close()

			return nil, fmt.Errorf("rtc: ice tcp listen: %w", err)
		}
		e.tcpAddr, _ = ln.Addr().(*net.TCPAddr)
		e.tcpMux = webrtc.NewICETCPMux(e.lf.NewLogger("ice-tcp-mux"), ln, 8)
	}
	e.srs = newSRScheduler()
	log.Info("webrtc engine ready", "udp", e.udpAddr.String(), "tcp", addrString(e.tcpAddr),
		"public_ips", cfg.PublicIPs, "udp_sockets", len(muxes), "batch", !cfg.NoBatch, "gso", e.GSO())

	return e, nil
}

// localIPs lists the addresses to bind the ICE UDP sockets to: every up interface's unicast
// addresses (loopback ones only with loopback), link-local IPv6 left out.
func localIPs(loopback bool) ([]net.IP, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 && !loopback {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.IsLinkLocalUnicast() || n.IP.IsMulticast() || n.IP.IsUnspecified() ||
				n.IP.IsLoopback() && !loopback {
				continue
			}
			ips = append(ips, n.IP)
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w: no usable local address", ErrBadConfig)
	}
	return ips, nil
}

// GSO reports whether batches leave with UDP GSO (on at least one socket).
func (e *Engine) GSO() bool {
	if e.cfg.NoBatch {
		return false
	}
	for _, c := range e.conns {
		if c.gso.Load() {
			return true
		}
	}
	return false
}

func addrString(a *net.TCPAddr) string {
	if a == nil {
		return "off"
	}

	return a.String()
}

// UDPAddr is the ICE UDP mux's address (its port is the one to advertise).
func (e *Engine) UDPAddr() *net.UDPAddr { return e.udpAddr }

// TCPAddr is the ICE-TCP mux's address, or nil when ICE-TCP is off.
func (e *Engine) TCPAddr() *net.TCPAddr { return e.tcpAddr }

// ICEServers returns the configured STUN/TURN servers (for clients).
func (e *Engine) ICEServers() []webrtc.ICEServer { return e.cfg.ICEServers }

// Config returns the engine's effective config (defaults filled in).
func (e *Engine) Config() Config { return e.cfg }

// NewPeerConnection makes a server-side PeerConnection: host candidates on the shared ICE UDP and TCP
// muxes only, with Estuary's codecs and interceptors.
func (e *Engine) NewPeerConnection(c webrtc.Configuration) (*webrtc.PeerConnection, error) {
	se := e.serverSettings()

	return e.newPC(se, c, pcRole{sched: e.srs})
}

// serverSettings are the settings of server-side PeerConnections: host candidates on the shared ICE
// UDP and TCP muxes only.
func (e *Engine) serverSettings() webrtc.SettingEngine {
	se := e.baseSettings()
	se.SetICEUDPMux(e.udpMux)
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if e.tcpMux != nil {
		se.SetICETCPMux(e.tcpMux)
		types = append(types, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(types)
	se.SetIncludeLoopbackCandidate(e.loopback)
	if len(e.cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(e.cfg.PublicIPs, webrtc.ICECandidateTypeHost) //nolint:staticcheck // plain 1:1 NAT
	}
	if e.cfg.ListenIP != "" {
		listen := net.ParseIP(e.cfg.ListenIP)
		se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(listen) })
	}

	return se
}

// NewViewerPeerConnection is NewPeerConnection for a PeerConnection that only sends media (WHEP,
// SRS play): without the interceptors that act on received media (NACK generation, receiver
// reports, TWCC feedback), each of which costs a goroutine and buffers per viewer.
//
// The Batch (nil when webrtc.batch is off) is for the PeerConnection's LocalTracks
// (LocalTrackOptions.Batch).
func (e *Engine) NewViewerPeerConnection(c webrtc.Configuration) (*webrtc.PeerConnection, *Batch, error) {
	se := e.serverSettings()
	var sr *senderReports
	pc, err := e.newPC(se, c, pcRole{sched: e.srs, sendOnly: true, made: func(r *senderReports) { sr = r }})
	if err != nil {
		return nil, nil, err
	}

	return pc, e.newBatch(pc, sr), nil
}

// connFor returns the ICE UDP socket bound to local (the only one when there is one), or nil.
func (e *Engine) connFor(local *netip.AddrPort) *batchConn {
	if len(e.conns) == 1 {
		return e.conns[0]
	}
	if local == nil {
		return nil
	}
	for _, c := range e.conns {
		if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.AddrPort().Addr().Unmap() == local.Addr() {
			return c
		}
	}
	return nil
}

// srStreamOf returns r's stream ssrc (bound by pion when the RTP sender starts), or nil.
func (e *Engine) srStreamOf(r *senderReports, ssrc uint32) *srStream {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.streams[ssrc]
}

// NewClientPeerConnection makes a client-side PeerConnection with Estuary's codecs and interceptors
// (for the cluster relay puller and tests): its own ephemeral UDP ports, loopback candidates
// included, and, when ListenIP is set, candidates on that address only.
func (e *Engine) NewClientPeerConnection(c webrtc.Configuration) (*webrtc.PeerConnection, error) {
	se := e.baseSettings()
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(true)
	if e.cfg.ListenIP != "" {
		listen := net.ParseIP(e.cfg.ListenIP)
		se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(listen) })
	}

	return e.newPC(se, c, pcRole{})
}

func (e *Engine) baseSettings() webrtc.SettingEngine {
	se := webrtc.SettingEngine{LoggerFactory: e.lf}
	se.SetSRTPProtectionProfiles(
		dtls.SRTP_AEAD_AES_128_GCM,
		dtls.SRTP_AEAD_AES_256_GCM,
		dtls.SRTP_AES128_CM_HMAC_SHA1_80,
	)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(e.cfg.ICEDisconnectedTimeout, e.cfg.ICEFailedTimeout, 2*time.Second)

	return se
}

func (e *Engine) newPC(se webrtc.SettingEngine, c webrtc.Configuration, role pcRole) (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	ir := &interceptor.Registry{}
	if role.sched != nil {
		// The server gathers host candidates only: STUN/TURN servers are for clients.
		c.ICEServers = nil
	}
	if err := registerCodecs(e.cfg, me, ir, e.lf, role); err != nil {
		return nil, fmt.Errorf("rtc: register codecs: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(c)
	if err != nil {
		return nil, fmt.Errorf("rtc: new peer connection: %w", err)
	}

	return pc, nil
}

// Close releases the ICE muxes. Close every PeerConnection first.
func (e *Engine) Close() {
	e.srs.close()
	if e.tcpMux != nil {
		_ = e.tcpMux.Close()
	}
	_ = e.udpMux.Close()
}
