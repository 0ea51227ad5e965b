// Package rtc is Estuary's pion/webrtc engine, shared by every adapter that speaks WebRTC (signaling's
// WHIP, WHEP and SRS API; later the cluster relay). It owns:
//
//   - the codec and header-extension registration (one MediaEngine per PeerConnection),
//   - the interceptors (NACK generator and responder, RTCP sender/receiver reports, TWCC feedback),
//   - one ICE UDP mux and one ICE-TCP mux shared by every PeerConnection,
//   - LocalTrack, a webrtc.TrackLocal that is an sfu.PacketSink (fed by an sfu.DownTrack),
//   - ReadTrack, the publisher read loop that feeds an sfu.Track from a webrtc.TrackRemote.
//
// PLI handling is the adapters' (the sfu core rate-limits keyframe requests), so no PLI interceptor
// is registered.
package rtc
