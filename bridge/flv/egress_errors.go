package flv

import "errors"

var (
	// ErrSlowViewer: a viewer stayed behind the live edge longer than Config.MaxLag and was disconnected.
	ErrSlowViewer = errors.New("flv: viewer too slow")
	// ErrNoMedia: the stream has no track FLV can carry.
	ErrNoMedia = errors.New("flv: no track FLV can carry")
	// ErrServerClosed: the FLV server is closed.
	ErrServerClosed = errors.New("flv: server closed")
)

// ErrPeerGone: the viewer's client closed its connection (found while the viewer had nothing to write).
var ErrPeerGone = errors.New("flv: client left")
