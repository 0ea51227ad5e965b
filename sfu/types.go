package sfu

import (
	"time"

	"github.com/pion/rtp"
)

// Kind is a track's media kind.
type Kind uint8

const (
	KindAudio Kind = iota + 1
	KindVideo
)

func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	}
	return "unknown"
}

// Codec describes an RTP payload format, in pion's terms (MimeType as webrtc.MimeTypeH264 etc.).
// Internal-only formats use the same shape: AAC travels as "audio/mpeg4-generic" (RFC 3640).
type Codec struct {
	MimeType  string // "video/H264", "video/VP8", "video/VP9", "video/AV1", "video/H265", "audio/opus", "audio/mpeg4-generic"
	ClockRate uint32 // 90000 for video, 48000 for Opus, the sample rate for AAC
	Channels  uint16 // audio only
	Fmtp      string // a=fmtp parameters, e.g. "packetization-mode=1;profile-level-id=42e01f"
}

// TrackInfo is what a publisher declares for each track when it publishes.
type TrackInfo struct {
	ID    string // unique within the stream: "video", "audio" (Opus), "aac"
	Kind  Kind
	Codec Codec
	// Variant is "" for an original track; "webrtc" for a track derived from another for WebRTC
	// viewers (e.g. H.264 with its B-frames dropped). Frame outputs (FLV, HLS) skip variants, WebRTC
	// viewers prefer them, relays carry every track as is.
	Variant string
}

// Details are what an adapter learns of a track from the bitstream, for the API (SRS's video/audio objects).
type Details struct {
	Profile    string // "High", "Main", "Baseline", "LC"
	Level      string
	Width      int
	Height     int
	SampleRate int
	Channels   int
	BFrames    bool   // B-frames seen in this track
	Problem    string // a reason this track cannot be used somewhere (e.g. "HE-AAC cannot be decoded")
}

// ClientInfo describes a publisher or subscriber for the API.
type ClientInfo struct {
	ID         string    // unique in this process; see NewClientID
	Protocol   string    // "webrtc", "rtmp", "flv", "hls", "relay", ...
	RemoteAddr string    // "ip:port" where known
	Started    time.Time // when the client connected
}

// Client is what every publisher and subscriber is.
type Client interface {
	Info() ClientInfo
	// Close ends the client's connection (kick, takeover, end of grace, shutdown). Idempotent; must not block for long.
	Close() error
}

// Publisher feeds a stream. Its adapter calls Track.WriteRTP on the Publication's tracks.
type Publisher interface {
	Client
	// RequestKeyframe asks the source for a keyframe on the given track (a PLI for WebRTC; a no-op where
	// the source cannot be asked). Must not block. The hub rate-limits the calls.
	RequestKeyframe(trackID string)
}

// Subscriber consumes a stream.
type Subscriber interface {
	Client
	// AddTrack is called once for each track of the stream while the subscriber joins. It returns the
	// writer that receives the track's packets, or ErrTrackSkipped for a track it does not take.
	AddTrack(t *Track) (TrackWriter, error)
}

// TrackWriter receives a track's packets. WriteRTP must not block, must not keep p (nor its Payload)
// after it returns, and must not modify it.
type TrackWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// WriterStats are counters a TrackWriter may report (see StatsReporter).
type WriterStats struct {
	Packets uint64
	Bytes   uint64
	Dropped uint64 // packets dropped because the writer was slow
	// Retransmitted counts packets queued again at a viewer's request (RTCP NACK, DownTrack.Retransmit).
	Retransmitted uint64
	// RetransmitMissed counts requested packets not resent: not certain which packet the sequence
	// number was, no longer in the track's history, or over the retransmission rate or queue bound.
	RetransmitMissed uint64
}

// StatsReporter is implemented by TrackWriters that count what they send.
type StatsReporter interface {
	Stats() WriterStats
}
