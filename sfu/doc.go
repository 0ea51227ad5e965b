// Package sfu is Estuary's core: streams keyed "{app}/{stream}", each with one publisher and many
// subscribers, carrying RTP tracks. It knows nothing of RTMP, FLV, HLS, signaling or clusters: those are
// adapters (bridge, signaling, cascade) that publish into a Hub or subscribe to it.
//
// The per-packet path (Track.WriteRTP, DownTrack.WriteRTP) allocates nothing, holds no lock across I/O,
// and never blocks the publisher: each subscriber with I/O behind it has its own bounded queue and
// drops only its own packets when slow.
//
// In outline:
//   - Hub.Publish returns a Publication whose Tracks the publisher's adapter feeds (Track.WriteRTP, from
//     one goroutine). Publication.Close starts the stream's grace period (Config.Grace): a publisher of
//     the same key that returns in time takes the same *Track objects over (same ID and codec), and the
//     subscribers continue; otherwise the subscribers are closed and the stream ends.
//   - Hub.Subscribe calls Subscriber.AddTrack for each track and attaches the TrackWriters it returns.
//     Track.WriteRTP fans each packet out to a copy-on-write list of writers.
//   - Each video track keeps its last GOP (from the last keyframe, capped by Config.GOPCacheMaxDuration
//     and GOPCacheMaxBytes). A new writer gets it first, then live packets, with nothing missed or
//     repeated in between. Writers that implement ReplayWriter are told which packets are replayed.
//   - DownTrack is the writer for subscribers with I/O behind them: a bounded queue, one writer
//     goroutine, and sequence number and timestamp rewriting so the output stays continuous across its
//     own drops and across a change of source. It compresses a replayed GOP's timestamps so playback
//     starts at live, and paces the replay.
//   - The payload of each packet is copied once, into a reference-counted buffer shared by the GOP
//     cache and every DownTrack queue.
//   - Track.RequestKeyframe forwards keyframe requests to the publisher, at most one per
//     Config.KeyframeInterval; IsKeyframe tells keyframe starts of H.264, H.265, VP8, VP9 and AV1.
package sfu
