package api

import (
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/estuary-media/estuary/sfu"
)

// statsReporter is implemented by publishers and subscribers that count their bytes (sfu.WriterStats).
// A subscriber without it counts as 0 sent bytes.
type statsReporter interface {
	Stats() sfu.WriterStats
}

// streamJSON is one entry of "streams" (SRS's field names first, then Estuary's own).
type streamJSON struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	VHost     string      `json:"vhost"`
	App       string      `json:"app"`
	URL       string      `json:"url"`
	LiveMS    int64       `json:"live_ms"` // when the stream started, Unix milliseconds
	Clients   int         `json:"clients"` // publisher (if any) + subscribers
	SendBytes uint64      `json:"send_bytes"`
	RecvBytes uint64      `json:"recv_bytes"`
	Kbps      kbpsJSON    `json:"kbps"`
	Publish   publishJSON `json:"publish"`
	Video     *videoJSON  `json:"video"`
	Audio     *audioJSON  `json:"audio"`

	Key      string         `json:"key"`      // "{app}/{stream}"
	Protocol string         `json:"protocol"` // the publisher's protocol; "" while in grace
	Viewers  map[string]int `json:"viewers"`  // subscribers by protocol
	Tracks   []trackJSON    `json:"tracks"`
}

type kbpsJSON struct {
	Recv30s int64 `json:"recv_30s"`
	Send30s int64 `json:"send_30s"`
}

type publishJSON struct {
	Active bool   `json:"active"`
	CID    string `json:"cid"`
}

type videoJSON struct {
	Codec   string `json:"codec"`
	Profile string `json:"profile"`
	Level   string `json:"level"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
}

type audioJSON struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	Channel    int    `json:"channel"`
	Profile    string `json:"profile"`
}

type trackJSON struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Codec     string `json:"codec"`
	MimeType  string `json:"mime_type"`
	ClockRate uint32 `json:"clock_rate"`
	Channels  uint16 `json:"channels,omitempty"`
	Writers   int    `json:"writers"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	Profile   string `json:"profile,omitempty"`
	Level     string `json:"level,omitempty"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	BFrames   bool   `json:"bframes,omitempty"`
	Problem   string `json:"problem,omitempty"`
}

type streamsReply struct {
	Code    int          `json:"code"`
	Server  string       `json:"server"`
	Streams []streamJSON `json:"streams"`
}

type streamReply struct {
	Code   int        `json:"code"`
	Server string     `json:"server"`
	Stream streamJSON `json:"stream"`
}

// streamID is a stable ID for one life of a stream (key and start time).
func streamID(s *sfu.Stream) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s.Key()))
	_, _ = h.Write([]byte(strconv.FormatInt(s.Created().UnixNano(), 10)))
	return "vid-" + strconv.FormatUint(uint64(h.Sum32()), 36)
}

// codecName turns a mime type into SRS's codec names ("H264", "AAC", "opus").
func codecName(mime string) string {
	_, sub, ok := strings.Cut(mime, "/")
	if !ok {
		return mime
	}
	switch strings.ToLower(sub) {
	case "mpeg4-generic":
		return "AAC"
	case "opus":
		return "opus"
	}
	return strings.ToUpper(sub)
}

// counters sums a stream's bytes: received = its tracks' ingest, sent = its subscribers' stats.
func counters(s *sfu.Stream) (recv, send uint64) {
	for _, t := range s.Tracks() {
		if t != nil {
			recv += t.Stats().Bytes
		}
	}
	for _, sub := range s.Subscribers() {
		if r, ok := sub.(statsReporter); ok {
			send += r.Stats().Bytes
		}
	}
	return recv, send
}

func (a *API) streamJSON(s *sfu.Stream) streamJSON {
	key := s.Key()
	app, name, _ := strings.Cut(key, "/")
	out := streamJSON{
		ID: streamID(s), Name: name, VHost: "__defaultVhost__", App: app, URL: "/" + key,
		LiveMS: s.Created().UnixMilli(), Key: key, Viewers: map[string]int{}, Tracks: []trackJSON{},
	}
	out.RecvBytes, out.SendBytes = counters(s)
	out.Kbps = a.kbps(s)
	if p := s.Publisher(); p != nil {
		info := p.Info()
		out.Publish = publishJSON{Active: true, CID: info.ID}
		out.Protocol = info.Protocol
		out.Clients++
	}
	for _, sub := range s.Subscribers() {
		proto := sub.Info().Protocol
		if a.hidden(proto) {
			continue
		}
		out.Clients++
		out.Viewers[proto]++
	}
	for _, v := range a.extViewers(key) {
		out.Clients++
		out.Viewers[v.Info.Protocol]++
		out.SendBytes += v.Bytes
	}
	var aac, other *audioJSON
	for _, t := range s.Tracks() {
		if t == nil {
			continue
		}
		info, d, st := t.Info(), t.Details(), t.Stats()
		out.Tracks = append(out.Tracks, trackJSON{
			ID: info.ID, Kind: info.Kind.String(), Codec: codecName(info.Codec.MimeType), MimeType: info.Codec.MimeType,
			ClockRate: info.Codec.ClockRate, Channels: info.Codec.Channels, Writers: t.Writers(),
			Packets: st.Packets, Bytes: st.Bytes, Profile: d.Profile, Level: d.Level, Width: d.Width, Height: d.Height,
			BFrames: d.BFrames, Problem: d.Problem,
		})
		switch info.Kind {
		case sfu.KindVideo:
			if out.Video == nil {
				out.Video = &videoJSON{Codec: codecName(info.Codec.MimeType), Profile: d.Profile, Level: d.Level, Width: d.Width, Height: d.Height}
			}
		case sfu.KindAudio:
			rate, ch := d.SampleRate, d.Channels
			if rate == 0 {
				rate = int(info.Codec.ClockRate)
			}
			if ch == 0 {
				ch = int(info.Codec.Channels)
			}
			aj := &audioJSON{Codec: codecName(info.Codec.MimeType), SampleRate: rate, Channel: ch, Profile: d.Profile}
			if strings.EqualFold(info.Codec.MimeType, "audio/mpeg4-generic") {
				if aac == nil {
					aac = aj
				}
			} else if other == nil {
				other = aj
			}
		}
	}
	// SRS reports the stream's original audio: AAC when an RTMP publisher sent it (Opus is made from it).
	if aac != nil {
		out.Audio = aac
	} else {
		out.Audio = other
	}
	return out
}

func (a *API) streams() []*sfu.Stream {
	if a.hub == nil {
		return nil
	}
	ss := a.hub.Streams()
	sort.Slice(ss, func(i, j int) bool { return ss[i].Key() < ss[j].Key() })
	return ss
}

func (a *API) handleStreams(w http.ResponseWriter, r *http.Request) {
	reply := streamsReply{Server: a.cfg.NodeID, Streams: []streamJSON{}}
	for _, s := range a.streams() {
		if s != nil {
			reply.Streams = append(reply.Streams, a.streamJSON(s))
		}
	}
	a.writeJSON(w, http.StatusOK, reply)
}

func (a *API) handleStream(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("app") + "/" + r.PathValue("stream")
	var s *sfu.Stream
	if a.hub != nil && sfu.ValidKey(key) {
		s = a.hub.Stream(key)
	}
	if s == nil {
		a.writeError(w, statusOf(ErrNotFound), "stream "+key+" not found")
		return
	}
	a.writeJSON(w, http.StatusOK, streamReply{Server: a.cfg.NodeID, Stream: a.streamJSON(s)})
}

// handleStreamByID answers SRS's /api/v1/streams/{id}.
func (a *API) handleStreamByID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, s := range a.streams() {
		if s != nil && streamID(s) == id {
			a.writeJSON(w, http.StatusOK, streamReply{Server: a.cfg.NodeID, Stream: a.streamJSON(s)})
			return
		}
	}
	a.writeError(w, statusOf(ErrNotFound), "stream "+id+" not found")
}
