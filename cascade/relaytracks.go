package cascade

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/estuary-media/estuary/sfu"
)

// RelayProtocol is the ClientInfo.Protocol of relay publishers (puller side) and relay subscribers
// (egress side).
const RelayProtocol = "relay"

// maxTrackList bounds a relay track list (GET /relay/v1/{app}/{stream}) and the number of its tracks.
const (
	maxTrackList   = 16 << 10
	maxRelayTracks = 16
)

// relayTrack is one track in a relay track list.
type relayTrack struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"` // "audio" or "video"
	MimeType  string `json:"mime_type"`
	ClockRate uint32 `json:"clock_rate"`
	Channels  uint16 `json:"channels,omitempty"`
	Fmtp      string `json:"fmtp,omitempty"`
	Variant   string `json:"variant,omitempty"` // sfu.TrackInfo.Variant ("webrtc" for a derived track)
}

// relayTrackList is the body of GET /relay/v1/{app}/{stream}: the stream's tracks as they are on the
// origin, in order. The puller registers exactly these codecs and offers one recvonly transceiver per
// track in this order.
type relayTrackList struct {
	Key    string       `json:"key"`
	NodeID string       `json:"node_id"`
	Tracks []relayTrack `json:"tracks"`
}

// EncodeTrackList encodes a stream's track infos for the relay.
func EncodeTrackList(key, nodeID string, infos []sfu.TrackInfo) ([]byte, error) {
	l := relayTrackList{Key: key, NodeID: nodeID, Tracks: make([]relayTrack, 0, len(infos))}
	for _, in := range infos {
		l.Tracks = append(l.Tracks, relayTrack{
			ID: in.ID, Kind: in.Kind.String(), MimeType: in.Codec.MimeType, ClockRate: in.Codec.ClockRate,
			Channels: in.Codec.Channels, Fmtp: in.Codec.Fmtp, Variant: in.Variant,
		})
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("cascade: encode track list: %w", err)
	}

	return b, nil
}

// DecodeTrackList parses and validates a relay track list: at most 16 tracks, each with a unique
// non-empty ID, kind audio or video, a mime type "audio/..." or "video/..." of that kind, a clock rate,
// and no control characters.
func DecodeTrackList(b []byte) (key, nodeID string, infos []sfu.TrackInfo, err error) {
	if len(b) > maxTrackList {
		return "", "", nil, fmt.Errorf("%w: track list of %d bytes", ErrInvalidTrackList, len(b))
	}
	var l relayTrackList
	if err := json.Unmarshal(b, &l); err != nil {
		return "", "", nil, fmt.Errorf("%w: %w", ErrInvalidTrackList, err)
	}
	if !sfu.ValidKey(l.Key) {
		return "", "", nil, fmt.Errorf("%w: key %q", ErrInvalidTrackList, l.Key)
	}
	if l.NodeID != "" && !ValidNodeID(l.NodeID) {
		return "", "", nil, fmt.Errorf("%w: node_id %q", ErrInvalidTrackList, l.NodeID)
	}
	if len(l.Tracks) == 0 || len(l.Tracks) > maxRelayTracks {
		return "", "", nil, fmt.Errorf("%w: %d tracks", ErrInvalidTrackList, len(l.Tracks))
	}
	infos = make([]sfu.TrackInfo, 0, len(l.Tracks))
	for i, t := range l.Tracks {
		var kind sfu.Kind
		switch t.Kind {
		case "audio":
			kind = sfu.KindAudio
		case "video":
			kind = sfu.KindVideo
		default:
			return "", "", nil, fmt.Errorf("%w: track %d: kind %q", ErrInvalidTrackList, i, t.Kind)
		}
		typ, sub, ok := strings.Cut(t.MimeType, "/")
		if !ok || !strings.EqualFold(typ, t.Kind) || !token(sub) {
			return "", "", nil, fmt.Errorf("%w: track %d: mime type %q", ErrInvalidTrackList, i, t.MimeType)
		}
		if !token(t.ID) || len(t.ID) > 64 {
			return "", "", nil, fmt.Errorf("%w: track %d: id %q", ErrInvalidTrackList, i, t.ID)
		}
		if t.ClockRate == 0 || t.ClockRate > 1_000_000 || t.Channels > 16 {
			return "", "", nil, fmt.Errorf("%w: track %d: clock rate %d, %d channels", ErrInvalidTrackList, i, t.ClockRate, t.Channels)
		}
		if len(t.Fmtp) > 1024 || strings.ContainsFunc(t.Fmtp, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", "", nil, fmt.Errorf("%w: track %d: fmtp", ErrInvalidTrackList, i)
		}
		if t.Variant != "" && (!token(t.Variant) || len(t.Variant) > 32) {
			return "", "", nil, fmt.Errorf("%w: track %d: variant %q", ErrInvalidTrackList, i, t.Variant)
		}
		for _, o := range infos {
			if o.ID == t.ID {
				return "", "", nil, fmt.Errorf("%w: duplicate track id %q", ErrInvalidTrackList, t.ID)
			}
		}
		infos = append(infos, sfu.TrackInfo{ID: t.ID, Kind: kind, Variant: t.Variant, Codec: sfu.Codec{
			MimeType: t.MimeType, ClockRate: t.ClockRate, Channels: t.Channels, Fmtp: t.Fmtp,
		}})
	}

	return l.Key, l.NodeID, infos, nil
}

// token reports whether s is a non-empty run of [A-Za-z0-9_.+-].
func token(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '+'
		if !ok {
			return false
		}
	}

	return true
}
