package calls

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Message types. Client to server: join, offer, answer, candidate, bye. Server to client: joined,
// peer-joined, peer-left, error, and the relayed offer, answer, candidate and bye (with From set).
const (
	TypeJoin       = "join"
	TypeJoined     = "joined"
	TypePeerJoined = "peer-joined"
	TypePeerLeft   = "peer-left"
	TypeOffer      = "offer"
	TypeAnswer     = "answer"
	TypeCandidate  = "candidate"
	TypeBye        = "bye"
	TypeError      = "error"
)

// Error codes of an "error" message.
const (
	CodeRoomFull    = "room-full"
	CodeBadMessage  = "bad-message"
	CodeRateLimited = "rate-limited"
)

// MaxNameLen bounds a peer's display name (bytes).
const MaxNameLen = 64

// Candidate is an ICE candidate as the browser's RTCIceCandidate.toJSON() gives it. An empty
// Candidate string is the end-of-candidates marker.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Peer is one participant as others see it.
type Peer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ICEServer is an RTCIceServer as the browser takes it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Message is every message of the protocol, both directions; fields a type does not use stay empty
// and are left out of the JSON.
type Message struct {
	Type       string      `json:"type"`
	Name       string      `json:"name,omitempty"`       // join
	ID         string      `json:"id,omitempty"`         // joined (yours), peer-left (who left)
	Peers      *[]Peer     `json:"peers,omitempty"`      // joined (always present there, maybe empty)
	ICEServers []ICEServer `json:"iceServers,omitempty"` // joined
	Peer       *Peer       `json:"peer,omitempty"`       // peer-joined
	SDP        string      `json:"sdp,omitempty"`        // offer, answer
	Candidate  *Candidate  `json:"candidate,omitempty"`  // candidate
	From       string      `json:"from,omitempty"`       // relayed messages: the sender's id
	Code       string      `json:"code,omitempty"`       // error
	Text       string      `json:"message,omitempty"`    // error
}

// wireMessage is what a client may send: only the client-side fields, so a client cannot forge
// "from" or server-only fields (they are rejected as unknown).
type wireMessage struct {
	Type      string     `json:"type"`
	Name      *string    `json:"name"`
	SDP       *string    `json:"sdp"`
	Candidate *Candidate `json:"candidate"`
}

// DecodeClient parses and validates one client message (a JSON object with a known client type and
// the fields that type needs; unknown fields are refused). maxSDP bounds an offer's or answer's SDP
// (0: no bound). The error wraps ErrBadMessage and says what is wrong.
func DecodeClient(data []byte, maxSDP int) (Message, error) {
	var w wireMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return Message{}, fmt.Errorf("%w: data after the JSON object", ErrBadMessage)
	}
	m := Message{Type: w.Type}
	only := func(allowed ...string) error {
		fields := map[string]bool{"name": w.Name != nil, "sdp": w.SDP != nil, "candidate": w.Candidate != nil}
		for _, a := range allowed {
			delete(fields, a)
		}
		for f, set := range fields {
			if set {
				return fmt.Errorf("%w: %q takes no %q", ErrBadMessage, w.Type, f)
			}
		}
		return nil
	}
	switch w.Type {
	case TypeJoin:
		if err := only("name"); err != nil {
			return Message{}, err
		}
		if w.Name != nil {
			m.Name = *w.Name
		}
		if len(m.Name) > MaxNameLen || !utf8.ValidString(m.Name) || hasControl(m.Name) {
			return Message{}, fmt.Errorf("%w: name must be at most %d bytes of printable UTF-8", ErrBadMessage, MaxNameLen)
		}
	case TypeOffer, TypeAnswer:
		if err := only("sdp"); err != nil {
			return Message{}, err
		}
		if w.SDP == nil || *w.SDP == "" {
			return Message{}, fmt.Errorf("%w: %q needs a non-empty sdp", ErrBadMessage, w.Type)
		}
		if maxSDP > 0 && len(*w.SDP) > maxSDP {
			return Message{}, fmt.Errorf("%w: sdp longer than %d bytes", ErrBadMessage, maxSDP)
		}
		m.SDP = *w.SDP
	case TypeCandidate:
		if err := only("candidate"); err != nil {
			return Message{}, err
		}
		if w.Candidate == nil {
			return Message{}, fmt.Errorf("%w: %q needs a candidate object", ErrBadMessage, w.Type)
		}
		c := *w.Candidate
		if len(c.Candidate) > 1024 || hasControl(c.Candidate) || !utf8.ValidString(c.Candidate) {
			return Message{}, fmt.Errorf("%w: candidate line must be at most 1024 printable bytes", ErrBadMessage)
		}
		if c.SDPMid == nil && c.SDPMLineIndex == nil && c.Candidate != "" {
			return Message{}, fmt.Errorf("%w: candidate needs sdpMid or sdpMLineIndex", ErrBadMessage)
		}
		m.Candidate = &c
	case TypeBye:
		if err := only(); err != nil {
			return Message{}, err
		}
	case "":
		return Message{}, fmt.Errorf("%w: missing type", ErrBadMessage)
	default:
		return Message{}, fmt.Errorf("%w: unknown type %.32q", ErrBadMessage, w.Type)
	}
	return m, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// Encode renders a server message.
func Encode(m Message) []byte {
	b, err := json.Marshal(m)
	if err != nil { // only plain strings and slices: cannot fail
		return []byte(`{"type":"error","code":"bad-message","message":"internal encoding error"}`)
	}
	return b
}
