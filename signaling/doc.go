// Package signaling is Estuary's WebRTC signaling: WHIP publish (RFC 9725), WHEP play, their session
// resources (PATCH trickle / ICE restart, DELETE) and the SRS-compatible RTC API (/rtc/v1/publish/,
// /rtc/v1/play/). Publishers become sfu publishers; viewers become sfu subscribers with one
// sfu.DownTrack per track feeding an rtc.LocalTrack. Media engine, ICE muxes and interceptors come
// from sfu/rtc.
package signaling
