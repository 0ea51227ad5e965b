package flv

import "context"

// TagSink receives a viewer's tags with the viewer's own timestamps (milliseconds from its start): an
// RTMP play session writes each as an audio (8), video (9) or data (18) message. body is shared: the
// sink must not modify it nor keep it after returning unless it copies it.
type TagSink interface {
	WriteTag(typ uint8, ts uint32, body []byte) error
}

// BatchSink is a TagSink that takes each batch of queued tags at once (RTMP play writes a batch with
// one writev): tags[i] goes out at the viewer's timestamp ts[i]. The tags are shared (their bytes
// must not be modified) and both slices are reused after WriteTags returns.
type BatchSink interface {
	TagSink
	WriteTags(tags []*Tag, ts []uint32) error
}

// Pump writes the viewer's stream to sink until ctx ends, the viewer ends, or the sink fails: first
// onMetaData, then the sequence headers, the kept GOP and live tags, with timestamps rebased to the
// viewer's start (as HTTP-FLV does). It is the whole of RTMP play once the connection has said
// NetStream.Play.Start. A viewer that stays behind longer than Config.MaxLag ends with ErrSlowViewer.
// A BatchSink gets each batch in WriteTags calls of at most maxBatch tags (a larger backlog, the kept
// GOP at the start, in several, so no per-viewer buffer grows to its size); it does not allocate per
// tag.
func (v *Viewer) Pump(ctx context.Context, sink TagSink) error {
	var tw tagWriter
	if err := sink.WriteTag(TagScript, 0, v.Meta().Body()); err != nil {
		return err
	}
	bs, _ := sink.(BatchSink)
	var tags, out []*Tag
	var tss []uint32
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
		out, tss = out[:0], tss[:0]
		for _, t := range tags {
			ts, ok := tw.ts(t)
			if !ok {
				continue
			}
			if bs != nil {
				out, tss = append(out, t), append(tss, ts)
				if len(out) == maxBatch {
					err := bs.WriteTags(out, tss)
					clear(out)
					out, tss = out[:0], tss[:0]
					if err != nil {
						return err
					}
				}
				continue
			}
			if err := sink.WriteTag(t.Type, ts, t.Body); err != nil {
				return err
			}
		}
		if len(out) > 0 {
			err := bs.WriteTags(out, tss)
			clear(out)
			if err != nil {
				return err
			}
		}
	}
}
