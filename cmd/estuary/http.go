package main

import (
	"html/template"
	"net/http"
	"strings"
	"sync"
)

// fileRoutes serves GET /{app}/{file} by the file's suffix (".flv", ".m3u8"), a table the output
// adapters fill when wired; other files go to the pages handler (static assets), else 404.
type fileRoutes struct {
	mu       sync.RWMutex
	routes   []fileRoute // guarded by mu
	fallback http.Handler
}

type fileRoute struct {
	suffix string
	h      http.Handler
}

// Handle registers h for GET /{app}/{file} where file ends in suffix; h reads r.PathValue("app") and
// r.PathValue("file") (e.g. "test.flv"). Safe to call while serving.
func (f *fileRoutes) Handle(suffix string, h http.Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = append(f.routes, fileRoute{suffix, h})
}

// ServeHTTP is mounted at "GET /": paths of exactly two segments whose file has a registered suffix
// go to that handler, with the "app" and "file" path values set.
func (f *fileRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var h http.Handler
	app, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if ok && app != "" && file != "" && !strings.Contains(file, "/") {
		f.mu.RLock()
		for _, rt := range f.routes {
			if strings.HasSuffix(file, rt.suffix) && len(file) > len(rt.suffix) {
				h = rt.h
				break
			}
		}
		f.mu.RUnlock()
	}
	switch {
	case h != nil:
		r.SetPathValue("app", app)
		r.SetPathValue("file", file)
		h.ServeHTTP(w, r)
	case f.fallback != nil:
		f.fallback.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// cors adds http.cors as Access-Control-Allow-Origin to every answer (once: a handler that sets the
// header again replaces it) and answers preflights for routes without their own OPTIONS handler.
func (a *app) cors(next *http.ServeMux) http.Handler {
	origin := a.cfg.HTTP.CORS
	if origin == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		if origin != "*" {
			h.Add("Vary", "Origin")
		}
		h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After, Content-Type")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			} else {
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
			}
			h.Set("Access-Control-Max-Age", "86400")
			if _, pattern := next.Handler(r); !strings.HasPrefix(pattern, "OPTIONS ") {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Estuary</title></head>
<body><h1>Estuary</h1><p>{{.Role}} node <code>{{.NodeID}}</code></p>
<ul>{{range .URLs}}<li>{{.What}}: <code>{{.URL}}</code></li>{{end}}</ul>
</body></html>
`))

// serveIndex is the minimal index used until the web pages are wired.
func (a *app) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	type line struct{ What, URL string }
	data := struct {
		Role, NodeID string
		URLs         []line
	}{Role: a.cfg.Role, NodeID: a.cfg.NodeID}
	for _, u := range a.urls {
		data.URLs = append(data.URLs, line{u.what, u.url})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexTmpl.Execute(w, data)
}
