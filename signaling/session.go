package signaling

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// session is one WebRTC PeerConnection with its resource (/n/{node}/{kind}/{id}): a publisher (WHIP,
// SRS publish) or a viewer (WHEP, SRS play).
type session struct {
	// opusStereo: the answer sent to the viewer gets stereo=1;sprop-stereo=1 on Opus (a stereo stream).
	opusStereo bool

	srv  *Server
	id   string // resource ID
	kind string // "whip" or "whep"
	key  string
	info sfu.ClientInfo
	pc   *webrtc.PeerConnection
	log  *slog.Logger

	negMu sync.Mutex // serializes negotiation (the POST answer, PATCH restarts); guards etag
	etag  string

	gmu     sync.Mutex     // guards closing against wg.Add
	closing bool           // guarded by gmu
	onEnd   func()         // guarded by gmu: run once the session is torn down (the auth end hooks)
	wg      sync.WaitGroup // the session's goroutines (track readers, RTCP readers, PLI writer)
	stopped atomic.Bool    // teardown started: publishers stop writing into the hub
	done    chan struct{}  // closed by teardown
	once    sync.Once
	timer   *time.Timer // connect timeout; set by answer, stopped on connect and by teardown
	tmu     sync.Mutex  // guards timer
	conned  atomic.Bool // the PeerConnection connected once

	pub     *sfu.Publication  // whip: set before the answer
	trackOf map[string]string // whip: mid -> sfu track ID (read-only after the answer)
	ssrcs   sync.Map          // whip: sfu track ID -> remote SSRC (uint32)
	kf      chan string       // whip: keyframe requests (track IDs)

	offer    *offer      // whep
	batch    *rtc.Batch  // whep: the LocalTracks' batched sends (nil: off)
	unsub    func()      // whep: set before the answer
	outMu    sync.Mutex  // whep: guards outs and answered
	outs     []*outTrack // whep
	answered bool        // whep: AddTrack after the answer would need a renegotiation
}

func (s *Server) newSession(kind, key, remoteAddr string, pc *webrtc.PeerConnection) *session {
	ss := &session{
		srv: s, id: newResourceID(), kind: kind, key: key, pc: pc, done: make(chan struct{}),
		etag: `"` + newResourceID() + `"`,
		info: sfu.ClientInfo{ID: sfu.NewClientID(), Protocol: "webrtc", RemoteAddr: remoteAddr, Started: time.Now()},
	}
	if ss.info.ID == "" {
		ss.info.ID = ss.id
	}
	ss.log = s.log.With("stream", key, "client_id", ss.info.ID, "remote_addr", remoteAddr, "session", kind)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		ss.log.Debug("peer connection state", "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			_ = ss.Close()
		case webrtc.PeerConnectionStateConnected:
			if !ss.conned.Swap(true) {
				ss.stopTimer()
				ss.log.Info("peer connected", "after", time.Since(ss.info.Started).Round(time.Millisecond).String())
			}
		}
	})

	return ss
}

// location is the session's resource URL.
func (ss *session) location() string {
	return "/n/" + ss.srv.cfg.NodeID + "/" + ss.kind + "/" + ss.id
}

// Info describes the client for the hub and the API.
func (ss *session) Info() sfu.ClientInfo { return ss.info }

// Close ends the session in the background (it is called from pion callbacks and by the hub, which
// must not wait). Idempotent.
func (ss *session) Close() error {
	if !ss.srv.spawn(ss.teardown) {
		// The server is closing: Server.Close tears every registered session down; a session being
		// created tears itself down when it fails to register.
		ss.stopped.Store(true)
	}

	return nil
}

// goTracked runs f on a goroutine teardown waits for; false once the session is closing.
func (ss *session) goTracked(f func()) bool {
	ss.gmu.Lock()
	defer ss.gmu.Unlock()
	if ss.closing {
		return false
	}
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		f()
	}()

	return true
}

// enter counts the calling goroutine (a pion callback) as the session's; false once closing.
func (ss *session) enter() bool {
	ss.gmu.Lock()
	defer ss.gmu.Unlock()
	if ss.closing {
		return false
	}
	ss.wg.Add(1)

	return true
}

// teardown leaves the hub, closes the PeerConnection and waits for the session's goroutines.
func (ss *session) teardown() {
	ss.once.Do(func() {
		ss.gmu.Lock()
		ss.closing = true
		onEnd := ss.onEnd
		ss.gmu.Unlock()
		ss.stopped.Store(true)
		ss.stopTimer()
		close(ss.done)
		if ss.pub != nil {
			ss.pub.Close()
		}
		if ss.unsub != nil {
			ss.unsub()
		}
		ss.outMu.Lock()
		outs := ss.outs
		ss.outMu.Unlock()
		for _, o := range outs {
			o.local.Close() // releases a DownTrack writer waiting for the binding
			_ = o.down.Close()
		}
		if err := ss.pc.Close(); err != nil {
			ss.log.Debug("peer connection close", "err", err)
		}
		ss.wg.Wait()
		ss.srv.remove(ss)
		ss.log.Info("session closed", "duration", time.Since(ss.info.Started).Round(time.Millisecond).String())
		if onEnd != nil && !ss.srv.spawn(onEnd) { // the hooks may take a while: not on the caller's time
			onEnd()
		}
	})
}

func (ss *session) stopTimer() {
	ss.tmu.Lock()
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.tmu.Unlock()
}

// answer creates and sets the local answer and waits for ICE gathering (non-trickle answer), at
// most Config.GatherTimeout.
func (ss *session) answer(ctx context.Context) (string, error) {
	ans, err := ss.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: create answer: %w", ErrNoCodec, err)
	}
	gathered := webrtc.GatheringCompletePromise(ss.pc)
	if err := ss.pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	t := time.NewTimer(ss.srv.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		ss.log.Warn("ICE gathering timed out; answering with the candidates gathered so far")
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ld := ss.pc.LocalDescription()
	if ld == nil {
		return "", fmt.Errorf("no local description")
	}
	if !ss.conned.Load() {
		ss.tmu.Lock()
		if ss.timer == nil {
			ss.timer = time.AfterFunc(ss.srv.cfg.ConnectTimeout, func() {
				if !ss.conned.Load() {
					ss.log.Info("peer did not connect in time", "timeout", ss.srv.cfg.ConnectTimeout.String())
					_ = ss.Close()
				}
			})
		}
		ss.tmu.Unlock()
	}
	if ss.opusStereo {
		// Only the answer the viewer receives says stereo (pion refuses a changed local description,
		// and its own side needs no such parameter to send stereo Opus).
		return withOpusStereo(ld.SDP), nil
	}

	return ld.SDP, nil
}
