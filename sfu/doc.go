// Package sfu is Estuary's core: streams keyed "{app}/{stream}", each with one publisher and many
// subscribers, carrying RTP tracks. It knows nothing of RTMP, FLV, HLS, signaling or clusters: those are
// adapters (bridge, signaling, cascade) that publish into a Hub or subscribe to it.
//
// The per-packet path (Track.WriteRTP, DownTrack.WriteRTP) allocates nothing, holds no lock across I/O,
// and never blocks the publisher: each subscriber with I/O behind it has its own bounded queue and
// drops only its own packets when slow.
package sfu
