package main

// reload re-reads the config (SIGHUP) and applies what can change without dropping streams: limits
// (limits.max_connections), auth (secret, modes, hooks: for clients that arrive from then on) and log.level
// (log.format needs a restart). Other changed keys need a restart
// and are reported as such; a config that does not load is reported and the running one kept.
func (a *app) reload(path string, environ []string) {
	cfg, err := Load(path, environ)
	if err != nil {
		a.log.Error("reload: config not applied", "err", err)
		return
	}
	old := a.cfg
	// Everything but the live-reloadable sections must be unchanged for a clean reload.
	cmpNew, cmpOld := cfg, old
	cmpNew.Limits, cmpOld.Limits = LimitsConfig{}, LimitsConfig{}
	cmpNew.Auth, cmpOld.Auth = AuthConfig{}, AuthConfig{} // auth reloads live (wire_auth.go)
	cmpNew.Log.Level, cmpOld.Log.Level = "", ""
	a1, _ := cmpNew.Marshal()
	a2, _ := cmpOld.Marshal()
	if string(a1) != string(a2) {
		a.log.Warn("reload: changes outside limits, auth and log.level need a restart; they are not applied")
	}
	m := cfg.Limits.MaxConnections
	// Logged before applying: a new log.level may hide it.
	a.log.Info("reloaded", "limits.max_connections.rtmp", m.RTMP, "limits.max_connections.webrtc", m.WebRTC,
		"limits.max_connections.http", m.HTTP, "limits.max_connections.websocket", m.WebSocket, "log.level", cfg.Log.Level)
	for _, r := range a.reloaders {
		r(cfg)
	}
}
