package api

// streamOf is the key of the stream client id publishes or plays ("" if none), for log lines.
func (a *API) streamOf(id string) string {
	if a.hub == nil {
		return ""
	}
	for _, s := range a.hub.Streams() {
		if p := s.Publisher(); p != nil && p.Info().ID == id {
			return s.Key()
		}
		for _, sub := range s.Subscribers() {
			if sub.Info().ID == id {
				return s.Key()
			}
		}
	}
	return ""
}
