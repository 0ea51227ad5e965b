package flv

import "context"

// TagSink receives a viewer's tags with the viewer's own timestamps (milliseconds from its start): an
// RTMP play session writes each as an audio (8), video (9) or data (18) message. body is shared: the
// sink must not modify it nor keep it after returning unless it copies it.
type TagSink interface {
	WriteTag(typ uint8, ts uint32, body []byte) error
}

// Pump writes the viewer's stream to sink until ctx ends, the viewer ends, or the sink fails: first
// onMetaData, then the sequence headers, the kept GOP and live tags, with timestamps rebased to the
// viewer's start (as HTTP-FLV does). It is the whole of RTMP play once the connection has said
// NetStream.Play.Start. A viewer that stays behind longer than Config.MaxLag ends with ErrSlowViewer.
func (v *Viewer) Pump(ctx context.Context, sink TagSink) error {
	var tw tagWriter
	if err := sink.WriteTag(TagScript, 0, v.Meta().Body()); err != nil {
		return err
	}
	var tags []*Tag
	for {
		var err error
		tags, err = v.Next(ctx, tags)
		if err != nil {
			return err
		}
		if v.Lagging() {
			v.end(ErrSlowViewer)
			return ErrSlowViewer
		}
		for _, t := range tags {
			ts, ok := tw.ts(t)
			if !ok {
				continue
			}
			if err := sink.WriteTag(t.Type, ts, t.Body); err != nil {
				return err
			}
		}
		clear(tags)
	}
}
