package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/stats"
)

// whepClient makes WHEP viewers: one pion PeerConnection each (its own UDP socket), receive-only
// video and audio, RTP parsed and counted, nothing decoded.
type whepClient struct {
	url  string
	http *http.Client
	api  *webrtc.API
}

// newWHEP prepares the pion API shared by every viewer: pion's default codecs, no interceptors
// (rtcp: NACK generator and receiver reports), loopback candidates only when the target is
// loopback (then nothing is sent anywhere else).
func newWHEP(target string, hc *http.Client, rtcp bool, rcvbuf int) (playFunc, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if rtcp {
		if err := webrtc.ConfigureNack(me, ir); err != nil {
			return nil, fmt.Errorf("nack: %w", err)
		}
		if err := webrtc.ConfigureRTCPReports(ir); err != nil {
			return nil, fmt.Errorf("rtcp reports: %w", err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if isLoopback(target) {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		u, _ := url.Parse(target)
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.To4() != nil {
			types = types[:1]
		}
	}
	se.SetNetworkTypes(types)
	if rcvbuf > 0 {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("net: %w", err)
		}
		se.SetNet(bufferedNet{Net: n, rcvbuf: rcvbuf})
	}
	c := &whepClient{url: target, http: hc,
		api: webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))}
	return c.play, nil
}

// bufferedNet is pion's standard network whose UDP sockets get a larger receive buffer: with
// hundreds of viewers on a busy machine the default (about 200 KB) overflows while a viewer's
// goroutine waits for a CPU, and the kernel's drops would read as the server's loss.
type bufferedNet struct {
	*stdnet.Net
	rcvbuf int
}

type readBufferSetter interface{ SetReadBuffer(bytes int) error }

func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err == nil {
		_ = c.SetReadBuffer(n.rcvbuf)
	}
	return c, err //nolint:wrapcheck // the net layer's own error
}

func (n bufferedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if s, ok := c.(readBufferSetter); ok && err == nil {
		_ = s.SetReadBuffer(n.rcvbuf)
	}
	return c, err //nolint:wrapcheck // the net layer's own error
}

func (c *whepClient) play(ctx context.Context, v *viewer) error {
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("new peer connection: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer pc.Close() //nolint:errcheck // teardown
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("add transceiver: %w", err)
		}
	}
	dead := make(chan webrtc.PeerConnectionState, 1)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			select {
			case dead <- s:
			default:
			}
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Go(func() { readTrack(tr, v) })
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	answer, resource, err := c.post(ctx, pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	defer c.delete(resource)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("set remote description: %w", err)
	}
	joinTimer := time.NewTimer(max(v.k.joinTimeout-time.Since(v.start), 0))
	defer joinTimer.Stop()
	select {
	case <-v.gotMedia:
	case <-joinTimer.C:
		if v.abandon() { // else media came just as the timer fired
			return fmt.Errorf("%w (ICE/DTLS state %s)", ErrNoMedia, pc.ConnectionState())
		}
	case <-ctx.Done():
		return ctx.Err()
	case s := <-dead:
		return fmt.Errorf("%w: peer connection %s before the first media", ErrDisconnected, s)
	}
	select {
	case <-ctx.Done():
		return nil
	case s := <-dead:
		return fmt.Errorf("%w: peer connection %s", ErrDisconnected, s)
	}
}

// post sends the offer; it returns the answer and the session resource URL.
func (c *whepClient) post(ctx context.Context, offer string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewBufferString(offer))
	if err != nil {
		return "", "", fmt.Errorf("whep request: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("whep POST: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", fmt.Errorf("whep answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%w: whep POST: %s: %s", ErrStatus, resp.Status, firstLine(body))
	}
	resource := ""
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := resp.Request.URL.Parse(loc); err == nil {
			resource = u.String()
		}
	}
	return string(body), resource, nil
}

// delete ends the session on the server (best effort).
func (c *whepClient) delete(resource string) {
	if resource == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, resource, nil)
	if err != nil {
		return
	}
	if resp, err := c.http.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// readTrack counts one track's RTP packets until the track ends. One buffer, no allocation per
// packet: the header is parsed in place and the payload never copied.
func readTrack(tr *webrtc.TrackRemote, v *viewer) {
	buf := make([]byte, 1600)
	var h rtp.Header
	var seq stats.SeqTracker
	c := &v.k.c
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if _, err := h.Unmarshal(buf[:n]); err != nil {
			continue
		}
		v.media(n)
		lost, gap, late := seq.Push(h.SequenceNumber)
		if lost > 0 {
			c.Lost.Add(int64(lost))
		}
		if gap {
			c.Gaps.Add(1)
		}
		if late {
			c.Late.Add(1)
		}
	}
}

// firstLine is the first line of an error body, bounded.
func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(bytes.TrimSpace(b))
}
