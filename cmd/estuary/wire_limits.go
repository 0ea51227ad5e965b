package main

// wireLimits enforces limits.max_connections (see limits) on the HTTP handler and, through the RTMP
// server's Deps.Admit (admitRTMP), on RTMP; a SIGHUP reload changes the maxima live. It runs after the
// adapters it counts (signaling, calls) are wired; metrics read its counts.
func wireLimits(a *app) error {
	l := a.limiter()
	if a.sig != nil {
		l.webrtc = a.sig.Sessions
	}
	if a.callsServer != nil {
		l.ws = a.callsServer.Conns
	}
	a.middleware = append(a.middleware, l.middleware)
	a.reloaders = append(a.reloaders, func(cfg Config) { l.set(cfg.Limits.MaxConnections) })
	return nil
}

func init() {
	// Limits before metrics (metrics report its counts): both are appended after the adapters.
	wirings = append(wirings, wireLimits)
	connCounts = func(a *app) (func() map[string]int, func() map[string]uint64) {
		if a.limits == nil {
			return nil, nil
		}
		return a.limits.open, a.limits.refusedCounts
	}
}
