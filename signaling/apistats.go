package signaling

import "github.com/estuary-media/estuary/sfu"

// Stats sums what the viewer's DownTracks sent and dropped. The API (package api) reads it through
// an optional `Stats() sfu.WriterStats` method on subscribers, for send_bytes and kbps.send_30s.
// (Added by the app area.)
func (w whepSession) Stats() sfu.WriterStats {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	var st sfu.WriterStats
	for _, o := range w.outs {
		if o == nil || o.down == nil {
			continue
		}
		s := o.down.Stats()
		st.Packets += s.Packets
		st.Bytes += s.Bytes
		st.Dropped += s.Dropped
	}
	return st
}
