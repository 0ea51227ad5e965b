// Package turn is Estuary's embedded TURN server (pion/turn/v5): UDP and TCP on one port,
// time-limited credentials in the TURN REST API style (username "expiry:user", password
// base64(HMAC-SHA1(secret, username))), relay address Config.PublicIP, a per-user allocation quota,
// and a peer filter that refuses loopback (unless AllowLoopback), unspecified and denied addresses.
package turn
