package rtc

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// Direct sends: a viewer's RTP bypasses pion's per-packet write path (interceptor chain, SRTP
// session, DTLS/ICE mux endpoints, ICE candidate pair, UDP mux: about half of what a forwarded packet
// cost, see docs/benchmarks.md). Once DTLS is up, the LocalTrack derives the SRTP keys from the DTLS
// connection itself (RFC 5764, as pion does), encrypts with its own srtp.Context and hands the
// datagram to the ICE UDP socket (batchConn) for the selected pair's remote address, gathered into
// the viewer's batch. The track's sender reports are fed directly (senderReports), and RTCP still
// goes through pion (reports out, NACK/PLI in). pion never sends RTP on a direct track, so the two
// SRTP contexts never share a stream's rollover state. Anything unusual (ICE over TCP, a DTLS
// connection pion does not expose as expected) keeps the track on pion's path.

// errNoDirect says why a track stays on pion's write path; errDirectNotYet that it may go direct
// once DTLS and the RTP sender are up.
var (
	errNoDirect     = errors.New("rtc: direct send unavailable")
	errDirectNotYet = errors.New("rtc: direct send not ready yet")
)

// directPath is what a LocalTrack needs to send directly: its own SRTP context (one per track:
// one writer goroutine each), the socket and destination, and its sender-report stream.
type directPath struct {
	ctx   *srtp.Context
	b     *Batch // the selected pair (destination and socket) is read per packet: ICE may move
	sr    *srStream
	plain []byte // marshaled packet (scratch)
	enc   []byte // encrypted packet (scratch)
}

// write encrypts and sends one packet.
func (d *directPath) write(h *rtp.Header, payload []byte) (int, error) {
	hl := h.MarshalSize()
	n := hl + len(payload)
	if cap(d.plain) < n {
		d.plain = make([]byte, n+256)
	}
	plain := d.plain[:n]
	if _, err := h.MarshalTo(plain); err != nil {
		return 0, err
	}
	copy(plain[hl:], payload)
	enc, err := d.ctx.EncryptRTP(d.enc[:0], plain, h)
	if err != nil {
		return 0, err
	}
	d.enc = enc[:0] // keep what EncryptRTP grew
	if d.sr != nil {
		d.sr.process(time.Now(), h, len(payload))
	}
	dst := d.b.dst.Load()
	conn := d.b.engine.connFor(d.b.localAddr.Load())
	if dst == nil || conn == nil { // ICE moved to TCP: pion's path cannot take over this stream's SRTP
		return 0, errNoDirect
	}
	if _, err := conn.WriteToAddrPort(enc, *dst); err != nil {
		return 0, err
	}
	return n, nil
}

// newDirectPath prepares a direct path for the stream ssrc of b's PeerConnection, whose DTLS must be
// connected. It fails (errNoDirect) when the track should stay on pion's path.
func (b *Batch) newDirectPath(ssrc uint32) (*directPath, error) {
	pc := b.pc
	if pc == nil || b.engine == nil || b.sr == nil {
		return nil, errNoDirect
	}
	dt := pc.SCTP().Transport()
	if dt.State() != webrtc.DTLSTransportStateConnected {
		return nil, errDirectNotYet
	}
	if b.dst.Load() == nil || b.engine.connFor(b.localAddr.Load()) == nil {
		return nil, fmt.Errorf("%w: the selected pair is not on the ICE UDP mux", errNoDirect)
	}
	sr := b.engine.srStreamOf(b.sr, ssrc)
	if sr == nil {
		return nil, errDirectNotYet // pion binds the stream's interceptors after the track
	}
	local, remote := pc.CurrentLocalDescription(), pc.CurrentRemoteDescription()
	if local == nil || remote == nil {
		return nil, fmt.Errorf("%w: not negotiated", errNoDirect)
	}
	// RFC 9335 cryptex, as pion sets it up for what it sends: it changes nothing for our packets (no
	// header extensions, no CSRCs), but the context then matches pion's own.
	var opts []srtp.ContextOption
	if strings.Contains(local.SDP, "a=cryptex") {
		opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	var isClient bool
	switch {
	case strings.Contains(local.SDP, "a=setup:active"):
		isClient = true
	case strings.Contains(local.SDP, "a=setup:passive"):
	default:
		return nil, fmt.Errorf("%w: DTLS role unknown", errNoDirect)
	}
	conn := dtlsConnOf(dt)
	if conn == nil {
		return nil, fmt.Errorf("%w: no DTLS connection", errNoDirect)
	}
	profile, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, fmt.Errorf("%w: no SRTP profile", errNoDirect)
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, fmt.Errorf("%w: no DTLS state", errNoDirect)
	}
	cfg := srtp.Config{Profile: srtp.ProtectionProfile(profile)}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoDirect, err)
	}
	ctx, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoDirect, err)
	}
	return &directPath{ctx: ctx, b: b, sr: sr, plain: make([]byte, 0, 1500), enc: make([]byte, 0, 1500)}, nil
}

// dtlsConnType is the type of webrtc.DTLSTransport's unexported conn field.
var dtlsConnType = reflect.TypeOf((*dtls.Conn)(nil))

// dtlsConnOf reads the DTLS connection of t (an unexported field of pion's DTLSTransport: pion has
// no accessor; TestDirectSend fails if a pion upgrade moves it). t must be connected: pion sets the
// field and the state under its lock, and State() took that lock, so the read is ordered after.
func dtlsConnOf(t *webrtc.DTLSTransport) *dtls.Conn {
	if t == nil {
		return nil
	}
	f := reflect.ValueOf(t).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != dtlsConnType {
		return nil
	}
	return *(**dtls.Conn)(unsafe.Pointer(f.UnsafeAddr()))
}
