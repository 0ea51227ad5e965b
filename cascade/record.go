package cascade

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// Redis keys and channel. Stream leases live under StreamPrefix+"{app}/{stream}", node records under
// NodePrefix+"{node_id}"; start/stop announcements are published on EventsChannel.
const (
	StreamPrefix  = "estuary:stream:"
	NodePrefix    = "estuary:node:"
	EventsChannel = "estuary:events"
)

// Node roles, as in the top-level `role` config key.
const (
	RoleStandalone = "standalone"
	RoleOrigin     = "origin"
	RoleEdge       = "edge"
)

// maxRecordBytes bounds an encoded record or event; anything larger is rejected unparsed.
const maxRecordBytes = 4096

// maxField bounds node ids, owner tokens and URLs.
const maxField = 512

// Record is a stream lease: who publishes Key and where to pull it from.
type Record struct {
	// Key is the stream key "{app}/{stream}" (the lease's Redis key without StreamPrefix).
	Key string `json:"key"`
	// NodeID is the publishing node's node_id.
	NodeID string `json:"node_id"`
	// RelayURL is where other nodes pull the stream ("{advertise}/relay/v1/{app}/{stream}"); empty
	// when the node advertises no HTTP URL (standalone).
	RelayURL string `json:"relay_url"`
	// OwnerToken is random per lease: only the holder of the token refreshes or releases the lease.
	OwnerToken string `json:"owner_token"`
	// StartedAt is when the lease was first taken.
	StartedAt time.Time `json:"started_at"`
}

// Node is a node record: a live cluster member.
type Node struct {
	NodeID string `json:"node_id"`
	// Role is RoleStandalone, RoleOrigin or RoleEdge.
	Role string `json:"role"`
	// Advertise is the node's HTTP URL as other nodes reach it (cluster.advertise); may be empty.
	Advertise string `json:"advertise"`
	// StartedAt is when the node (its registry) started.
	StartedAt time.Time `json:"started_at"`
}

// EventType is the kind of an announcement.
type EventType string

const (
	// EventStart: a lease was taken (a stream started, moved, or its lease was re-taken after an outage).
	EventStart EventType = "start"
	// EventStop: a lease was released (the stream stopped on its node).
	EventStop EventType = "stop"
)

// Event is an announcement on EventsChannel.
type Event struct {
	Type   EventType `json:"type"`
	Record Record    `json:"record"`
}

// ValidNodeID reports whether id can be a node_id: 1 to 128 characters of [A-Za-z0-9_.-], not "." or
// ".." (it appears in URL paths as /n/{node_id}/).
func ValidNodeID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}

	return true
}

// earliest is the earliest sane started_at.
var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// saneTime reports whether t is a plausible start time: after 2000 and at most a day ahead of now
// (clocks of cluster nodes are assumed roughly in step).
func saneTime(t time.Time) bool {
	return !t.Before(earliest) && t.Before(time.Now().Add(24*time.Hour))
}

// validURL accepts "" or an absolute http(s) URL with a host.
func validURL(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > maxField {
		return false
	}
	u, err := url.Parse(s)

	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Validate checks every field of the record.
func (r Record) Validate() error {
	switch {
	case !sfu.ValidKey(r.Key):
		return fmt.Errorf("%w: key %q: %w", ErrInvalidRecord, r.Key, sfu.ErrInvalidKey)
	case !ValidNodeID(r.NodeID):
		return fmt.Errorf("%w: node_id %q", ErrInvalidRecord, r.NodeID)
	case r.OwnerToken == "" || len(r.OwnerToken) > maxField:
		return fmt.Errorf("%w: owner_token missing or too long", ErrInvalidRecord)
	case !validURL(r.RelayURL):
		return fmt.Errorf("%w: relay_url %q", ErrInvalidRecord, r.RelayURL)
	case !saneTime(r.StartedAt):
		return fmt.Errorf("%w: started_at %s", ErrInvalidRecord, r.StartedAt)
	}

	return nil
}

// Validate checks every field of the node record.
func (n Node) Validate() error {
	switch {
	case !ValidNodeID(n.NodeID):
		return fmt.Errorf("%w: node_id %q", ErrInvalidRecord, n.NodeID)
	case n.Role != RoleStandalone && n.Role != RoleOrigin && n.Role != RoleEdge:
		return fmt.Errorf("%w: role %q", ErrInvalidRecord, n.Role)
	case !validURL(n.Advertise):
		return fmt.Errorf("%w: advertise %q", ErrInvalidRecord, n.Advertise)
	case !saneTime(n.StartedAt):
		return fmt.Errorf("%w: started_at %s", ErrInvalidRecord, n.StartedAt)
	}

	return nil
}

// Validate checks the event type and its record.
func (e Event) Validate() error {
	if e.Type != EventStart && e.Type != EventStop {
		return fmt.Errorf("%w: event type %q", ErrInvalidRecord, e.Type)
	}

	return e.Record.Validate()
}

// EncodeRecord validates r and encodes it as JSON.
func EncodeRecord(r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}

	return json.Marshal(r)
}

// DecodeRecord decodes and validates a lease record. Unknown fields are ignored (newer nodes may add
// some); missing or invalid fields are an error wrapping ErrInvalidRecord.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := decodeJSON(b, &r); err != nil {
		return Record{}, err
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}

	return r, nil
}

// EncodeNode validates n and encodes it as JSON.
func EncodeNode(n Node) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}

	return json.Marshal(n)
}

// DecodeNode decodes and validates a node record.
func DecodeNode(b []byte) (Node, error) {
	var n Node
	if err := decodeJSON(b, &n); err != nil {
		return Node{}, err
	}
	if err := n.Validate(); err != nil {
		return Node{}, err
	}

	return n, nil
}

// EncodeEvent validates e and encodes it as JSON.
func EncodeEvent(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}

	return json.Marshal(e)
}

// DecodeEvent decodes and validates an announcement.
func DecodeEvent(b []byte) (Event, error) {
	var e Event
	if err := decodeJSON(b, &e); err != nil {
		return Event{}, err
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}

	return e, nil
}

func decodeJSON(b []byte, v any) error {
	if len(b) > maxRecordBytes {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrInvalidRecord, len(b), maxRecordBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}

	return nil
}
