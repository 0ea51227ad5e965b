package api

import (
	"slices"

	"github.com/estuary-media/estuary/sfu"
)

// Viewer is a viewer served outside the hub's subscriber list: HTTP-FLV and RTMP play viewers read a
// shared muxer that is itself one (hidden) hub subscriber. Deps.Viewers lists them so they show in
// /api/v1/clients, count in /api/v1/streams and can be kicked.
type Viewer struct {
	// Info is the viewer's ID, protocol ("flv", "rtmp"), remote address and start.
	Info sfu.ClientInfo
	// Stream is the key of the stream it plays ("{app}/{stream}").
	Stream string
	// Bytes is what it was sent so far.
	Bytes uint64
	// Kick ends the viewer (its connection closes). Required.
	Kick func()
}

// hidden reports whether protocol names an internal subscriber (Config.HiddenProtocols).
func (a *API) hidden(protocol string) bool {
	return slices.Contains(a.cfg.HiddenProtocols, protocol)
}

// extViewers lists Deps.Viewers (all when key is "", else those of stream key).
func (a *API) extViewers(key string) []Viewer {
	if a.viewers == nil {
		return nil
	}
	vs := a.viewers()
	if key == "" {
		return vs
	}
	out := vs[:0:0]
	for _, v := range vs {
		if v.Stream == key {
			out = append(out, v)
		}
	}
	return out
}
