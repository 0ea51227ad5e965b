package api

import (
	"net"
	"net/http"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// clientJSON is one entry of "clients".
type clientJSON struct {
	ID         string  `json:"id"`
	VHost      string  `json:"vhost"`
	Stream     string  `json:"stream"`    // the stream key "{app}/{stream}"
	StreamID   string  `json:"stream_id"` // the stream's "id" in /api/v1/streams
	IP         string  `json:"ip"`
	RemoteAddr string  `json:"remote_addr"`
	URL        string  `json:"url"`
	Type       string  `json:"type"` // "publisher" or "subscriber"
	Publish    bool    `json:"publish"`
	Protocol   string  `json:"protocol"`
	SendBytes  uint64  `json:"send_bytes"`
	RecvBytes  uint64  `json:"recv_bytes"`
	Alive      float64 `json:"alive"` // seconds since start
	Start      string  `json:"start"` // RFC 3339
}

type clientsReply struct {
	Code    int          `json:"code"`
	Server  string       `json:"server"`
	Clients []clientJSON `json:"clients"`
}

type clientReply struct {
	Code   int        `json:"code"`
	Server string     `json:"server"`
	Client clientJSON `json:"client"`
}

type okReply struct {
	Code   int    `json:"code"`
	Server string `json:"server"`
}

func (a *API) clientJSON(s *sfu.Stream, c sfu.Client, publisher bool) clientJSON {
	info := c.Info()
	out := clientJSON{
		ID: info.ID, VHost: "__defaultVhost__", Stream: s.Key(), StreamID: streamID(s),
		RemoteAddr: info.RemoteAddr, URL: "/" + s.Key(), Type: "subscriber", Publish: publisher,
		Protocol: info.Protocol,
	}
	out.IP = info.RemoteAddr
	if host, _, err := net.SplitHostPort(info.RemoteAddr); err == nil {
		out.IP = host
	}
	if !info.Started.IsZero() {
		out.Start = info.Started.UTC().Format(time.RFC3339Nano)
		out.Alive = a.now().Sub(info.Started).Seconds()
	}
	r, hasStats := c.(statsReporter)
	if publisher {
		out.Type = "publisher"
		if hasStats {
			out.RecvBytes = r.Stats().Bytes
		} else {
			out.RecvBytes, _ = counters(s)
		}
	} else if hasStats {
		out.SendBytes = r.Stats().Bytes
	}
	return out
}

// clients lists every publisher and subscriber of every stream.
func (a *API) clients() []clientJSON {
	out := []clientJSON{}
	for _, s := range a.streams() {
		if s == nil {
			continue
		}
		if p := s.Publisher(); p != nil {
			out = append(out, a.clientJSON(s, p, true))
		}
		for _, sub := range s.Subscribers() {
			if !a.hidden(sub.Info().Protocol) {
				out = append(out, a.clientJSON(s, sub, false))
			}
		}
	}
	for _, v := range a.extViewers("") {
		out = append(out, a.viewerJSON(v))
	}
	return out
}

// viewerJSON describes a viewer of Deps.Viewers (HTTP-FLV, RTMP play).
func (a *API) viewerJSON(v Viewer) clientJSON {
	out := clientJSON{
		ID: v.Info.ID, VHost: "__defaultVhost__", Stream: v.Stream, RemoteAddr: v.Info.RemoteAddr, IP: v.Info.RemoteAddr,
		URL: "/" + v.Stream, Type: "subscriber", Protocol: v.Info.Protocol, SendBytes: v.Bytes,
	}
	if a.hub != nil {
		if s := a.hub.Stream(v.Stream); s != nil {
			out.StreamID = streamID(s)
		}
	}
	if host, _, err := net.SplitHostPort(v.Info.RemoteAddr); err == nil {
		out.IP = host
	}
	if !v.Info.Started.IsZero() {
		out.Start = v.Info.Started.UTC().Format(time.RFC3339Nano)
		out.Alive = a.now().Sub(v.Info.Started).Seconds()
	}
	return out
}

func (a *API) handleClients(w http.ResponseWriter, r *http.Request) {
	a.writeJSON(w, http.StatusOK, clientsReply{Server: a.cfg.NodeID, Clients: a.clients()})
}

func (a *API) handleClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, c := range a.clients() {
		if c.ID == id {
			a.writeJSON(w, http.StatusOK, clientReply{Server: a.cfg.NodeID, Client: c})
			return
		}
	}
	a.writeError(w, statusOf(ErrNotFound), "client "+id+" not found")
}

// handleKick closes exactly the client with that ID.
func (a *API) handleKick(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var c sfu.Client
	if a.hub != nil && id != "" {
		c = a.hub.Client(id)
	}
	if c == nil && id != "" {
		for _, v := range a.extViewers("") {
			if v.Info.ID == id && v.Kick != nil {
				v.Kick()
				a.log.Info("client kicked", "stream", v.Stream, "client_id", id, "protocol", v.Info.Protocol, "remote_addr", v.Info.RemoteAddr)
				a.writeJSON(w, http.StatusOK, okReply{Server: a.cfg.NodeID})
				return
			}
		}
	}
	if c == nil {
		a.writeError(w, statusOf(ErrNotFound), "client "+id+" not found")
		return
	}
	info := c.Info()
	key := a.streamOf(id)
	if err := c.Close(); err != nil {
		a.log.Warn("kick", "stream", key, "client_id", id, "err", err)
	}
	a.log.Info("client kicked", "stream", key, "client_id", id, "protocol", info.Protocol, "remote_addr", info.RemoteAddr)
	a.writeJSON(w, http.StatusOK, okReply{Server: a.cfg.NodeID})
}
