package main

import (
	"net/http"
	"net/http/pprof"
)

func init() { wirings = append(wirings, wirePProf) }

// wirePProf serves Go's profiler under /debug/pprof/ on the HTTP listeners when http.pprof is on
// (off by default: profiles reveal internals and cost CPU; for trusted networks and load tests).
func wirePProf(a *app) error {
	if !a.cfg.HTTP.PProf {
		return nil
	}
	a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	a.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	a.log.Warn("http.pprof is on: /debug/pprof/ is served on the HTTP listeners")
	return nil
}

var _ http.HandlerFunc = pprof.Index
