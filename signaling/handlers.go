package signaling

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
)

type negotiateFunc func(ctx context.Context, key, offerSDP, remoteAddr string) (*session, string, error)

func (s *Server) handleWHIP(w http.ResponseWriter, r *http.Request) {
	s.handlePost(w, r, sfu.ActionPublish, s.publish)
}

func (s *Server) handleWHEP(w http.ResponseWriter, r *http.Request) {
	s.handlePost(w, r, sfu.ActionPlay, s.play)
}

// handleSRSWHIP and handleSRSWHEP are SRS 5's /rtc/v1/whip/?app=&stream= and /rtc/v1/whip-play/.
func (s *Server) handleSRSWHIP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.handlePostKey(w, r, q.Get("app"), q.Get("stream"), sfu.ActionPublish, s.publish)
}

func (s *Server) handleSRSWHEP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.handlePostKey(w, r, q.Get("app"), q.Get("stream"), sfu.ActionPlay, s.play)
}

// handlePost is WHIP and WHEP's POST: check, negotiate, answer 201 with the resource.
func (s *Server) handlePost(w http.ResponseWriter, r *http.Request, action string, negotiate negotiateFunc) {
	s.handlePostKey(w, r, r.PathValue("app"), r.PathValue("stream"), action, negotiate)
}

func (s *Server) handlePostKey(w http.ResponseWriter, r *http.Request, app, stream, action string, negotiate negotiateFunc) {
	s.cors(w)
	if err := checkContentType(r, "application/sdp"); err != nil {
		s.writeError(w, r, err)

		return
	}
	key, err := streamKey(app, stream)
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	areq, err := s.authorize(r.Context(), r, action, key, "", "")
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	ss, answer, err := negotiate(r.Context(), key, string(body), r.RemoteAddr)
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	s.notifyOnEnd(ss, areq)
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", ss.location())
	ss.negMu.Lock()
	h.Set("ETag", ss.etag)
	ss.negMu.Unlock()
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	s.linkHeaders(w, r)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// handleDelete ends a session: 200, or 404 for an unknown one.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	s.cors(w)
	ss, err := s.lookup(r.PathValue("node"), r.PathValue("id"))
	if err == nil && !strings.Contains(r.URL.Path, "/"+ss.kind+"/") {
		err = fmt.Errorf("%w: %q", ErrSessionNotFound, r.PathValue("id"))
	}
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	ss.log.Info("session deleted by client")
	ss.teardown()
	w.WriteHeader(http.StatusOK)
}

// handlePatch takes trickled candidates (204) or an ICE restart (200 with our new fragment).
func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request) {
	s.cors(w)
	ss, err := s.lookup(r.PathValue("node"), r.PathValue("id"))
	if err == nil && !strings.Contains(r.URL.Path, "/"+ss.kind+"/") {
		err = fmt.Errorf("%w: %q", ErrSessionNotFound, r.PathValue("id"))
	}
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	if err := checkContentType(r, "application/trickle-ice-sdpfrag"); err != nil {
		s.writeError(w, r, err)

		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	frag, err := parseSDPFrag(string(body))
	if err != nil {
		s.writeError(w, r, err)

		return
	}
	ss.negMu.Lock()
	defer ss.negMu.Unlock()
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != ss.etag {
		s.writeError(w, r, fmt.Errorf("%w: If-Match %s, current %s", ErrPrecondition, m, ss.etag))

		return
	}
	restart := frag.Ufrag != "" && frag.Ufrag != remoteUfrag(ss.pc)
	if restart {
		local, err := ss.restartICE(r.Context(), frag)
		if err != nil {
			s.writeError(w, r, err)

			return
		}
		ss.etag = `"` + newResourceID() + `"`
		w.Header().Set("Content-Type", "application/trickle-ice-sdpfrag")
		w.Header().Set("ETag", ss.etag)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, local)

		return
	}
	if err := ss.addCandidates(frag); err != nil {
		s.writeError(w, r, err)

		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// remoteUfrag is the ICE ufrag of the current remote description.
func remoteUfrag(pc *webrtc.PeerConnection) string {
	rd := pc.RemoteDescription()
	if rd == nil {
		return ""
	}
	for line := range strings.SplitSeq(rd.SDP, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}

	return ""
}

func (ss *session) addCandidates(frag sdpFrag) error {
	for _, c := range frag.Candidates {
		init := webrtc.ICECandidateInit{Candidate: c.Candidate}
		if c.Mid != "" {
			mid := c.Mid
			init.SDPMid = &mid
		} else {
			idx := uint16(c.MLineIndex)
			init.SDPMLineIndex = &idx
		}
		if err := ss.pc.AddICECandidate(init); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadFragment, c.Candidate, err)
		}
	}

	return nil
}

// restartICE applies the client's new ICE credentials (an ICE restart) and returns our new local
// fragment. negMu is held.
func (ss *session) restartICE(ctx context.Context, frag sdpFrag) (string, error) {
	rd := ss.pc.RemoteDescription()
	if rd == nil {
		return "", fmt.Errorf("%w: no remote description yet", ErrBadFragment)
	}
	offerSDP, err := restartOffer(rd.SDP, frag.Ufrag, frag.Pwd)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadFragment, err)
	}
	if err := ss.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("%w: ice restart: %w", ErrBadFragment, err)
	}
	answer, err := ss.answer(ctx)
	if err != nil {
		return "", err
	}
	if err := ss.addCandidates(frag); err != nil {
		return "", err
	}
	ss.log.Info("ICE restarted by client")

	return localFragment(answer)
}
