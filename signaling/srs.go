package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/estuary-media/estuary/sfu"
)

// srsRequest is the body of SRS's POST /rtc/v1/publish/ and /rtc/v1/play/.
type srsRequest struct {
	API       string  `json:"api"`
	TID       string  `json:"tid"`
	StreamURL string  `json:"streamurl"`
	ClientIP  *string `json:"clientip"`
	SDP       string  `json:"sdp"`
}

// srsResponse is SRS's answer; errors carry a non-zero Code and a Message.
type srsResponse struct {
	Code      int    `json:"code"`
	Server    string `json:"server"`
	Service   string `json:"service,omitempty"`
	SessionID string `json:"sessionid,omitempty"`
	SDP       string `json:"sdp,omitempty"`
	Message   string `json:"message,omitempty"`
}

// srsCall is a decoded SRS API request.
type srsCall struct {
	Key   string     // "{app}/{stream}"
	Query url.Values // the streamurl's query (tokens, vhost...), not part of the key
	SDP   string
}

// decodeSRSRequest decodes and checks an SRS API body.
func decodeSRSRequest(body []byte) (srsCall, error) {
	var req srsRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return srsCall{}, fmt.Errorf("%w: body is not JSON: %w", ErrBadRequest, err)
	}
	if dec.More() {
		return srsCall{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadRequest)
	}
	key, q, err := parseStreamURL(req.StreamURL)
	if err != nil {
		return srsCall{}, err
	}
	if strings.TrimSpace(req.SDP) == "" {
		return srsCall{}, ErrMissingSDP
	}

	return srsCall{Key: key, Query: q, SDP: req.SDP}, nil
}

// parseStreamURL takes webrtc://host[:port]/app/stream[?query] apart.
func parseStreamURL(s string) (string, url.Values, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %q: %w", ErrBadStreamURL, s, err)
	}
	if !strings.EqualFold(u.Scheme, "webrtc") || u.Host == "" || u.Opaque != "" {
		return "", nil, fmt.Errorf("%w: got %q", ErrBadStreamURL, s)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 2 {
		return "", nil, fmt.Errorf("%w: got %q", ErrBadStreamURL, s)
	}
	key, err := streamKey(parts[0], parts[1])
	if err != nil {
		return "", nil, err
	}

	return key, u.Query(), nil
}

// handleSRS serves /rtc/v1/publish/ and /rtc/v1/play/: errors answer HTTP 200 with an SRS code.
func (s *Server) handleSRS(w http.ResponseWriter, r *http.Request) {
	s.cors(w)
	publish := strings.HasPrefix(r.URL.Path, "/rtc/v1/publish")
	resp, err := s.srs(w, r, publish)
	if err != nil {
		resp = srsResponse{Code: SRSCodeFor(err), Server: s.cfg.NodeID, Message: err.Error()}
		s.log.Info("srs api request refused", "path", r.URL.Path, "remote_addr", r.RemoteAddr,
			"code", resp.Code, "err", err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) srs(w http.ResponseWriter, r *http.Request, publish bool) (srsResponse, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return srsResponse{}, err
	}
	call, err := decodeSRSRequest(body)
	if err != nil {
		return srsResponse{}, err
	}
	negotiate := s.play
	if publish {
		negotiate = s.publish
	}
	action := sfu.ActionPlay
	if publish {
		action = sfu.ActionPublish
	}
	param := ""
	if len(call.Query) > 0 {
		param = "?" + call.Query.Encode()
	}
	areq, err := s.authorize(r.Context(), r, action, call.Key, call.Query.Get("token"), param)
	if err != nil {
		return srsResponse{}, err
	}
	ss, answer, err := negotiate(r.Context(), call.Key, call.SDP, r.RemoteAddr)
	if err != nil {
		return srsResponse{}, err
	}
	s.notifyOnEnd(ss, areq)

	return srsResponse{Code: SRSCodeOK, Server: s.cfg.NodeID, Service: ss.info.ID, SessionID: ss.id, SDP: answer}, nil
}
