// Package web serves Estuary's browser pages (index, publish, play) and their static assets, all
// embedded in the binary.
//
// Pages live at the root ("/", "/publish.html", "/play.html", "/call.html", ...); their scripts, styles and vendor
// libraries under "/static/". Vendor libraries from npm (hls.js, mpegts.js) are copied into
// static/vendor by scripts/web.sh at build time; when they are absent (a plain `go build` of a clean
// clone) the committed stubs in static/vendor-fallback are served instead, and they tell the page the
// library is missing.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var files embed.FS

const (
	staticDir   = "static"
	vendorDir   = "static/vendor"
	fallbackDir = "static/vendor-fallback"
)

// asset is one embedded file ready to serve.
type asset struct {
	name        string // path inside files, for ServeContent's name
	data        []byte
	contentType string
	etag        string
}

var (
	loadOnce sync.Once
	assets   map[string]*asset // URL path -> asset
	loadErr  error
)

// contentTypes maps the extensions the pages use to their media types, so the answer never depends
// on the host's mime tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".map":  "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// ContentType returns the media type served for a file name ("" if the extension is unknown).
func ContentType(name string) string {
	return contentTypes[strings.ToLower(path.Ext(name))]
}

// load indexes the embedded files by the URL path they are served at.
func load() {
	assets = make(map[string]*asset)
	add := func(urlPath, name string) error {
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ct := ContentType(name)
		if ct == "" {
			ct = http.DetectContentType(data)
		}
		assets[urlPath] = &asset{
			name:        path.Base(name),
			data:        data,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	}
	loadErr = fs.WalkDir(files, staticDir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(name, staticDir+"/")
		switch {
		case strings.HasPrefix(name, fallbackDir+"/"):
			// Served under /static/vendor/ unless the built library exists (handled below).
			return nil
		case !strings.Contains(rel, "/") && strings.HasSuffix(rel, ".html"):
			if rel == "index.html" {
				if err := add("/", name); err != nil {
					return err
				}
			}
			return add("/"+rel, name)
		default:
			return add("/static/"+rel, name)
		}
	})
	if loadErr != nil {
		loadErr = fmt.Errorf("%w: %w", ErrAssets, loadErr)
		return
	}
	// Fallback stubs for vendor libraries that scripts/web.sh did not build.
	loadErr = fs.WalkDir(files, fallbackDir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		urlPath := "/static/vendor/" + strings.TrimPrefix(name, fallbackDir+"/")
		if _, built := assets[urlPath]; built {
			return nil
		}
		return add(urlPath, name)
	})
	if loadErr != nil {
		loadErr = fmt.Errorf("%w: %w", ErrAssets, loadErr)
	}
}

// Handler serves the pages and their assets: GET and HEAD only, with ETag revalidation
// ("Cache-Control: no-cache", so a new binary's pages are picked up at once). Unknown paths get 404.
func Handler() http.Handler {
	loadOnce.Do(load)
	return http.HandlerFunc(serve)
}

// Paths lists every URL path Handler serves, for tests and the index page's self-check.
func Paths() []string {
	loadOnce.Do(load)
	out := make([]string, 0, len(assets))
	for p := range assets {
		out = append(out, p)
	}
	return out
}

// FS returns the embedded files (rooted at "static"), for tests.
func FS() fs.FS {
	sub, err := fs.Sub(files, staticDir)
	if err != nil {
		return files
	}
	return sub
}

var zeroTime time.Time

func serve(w http.ResponseWriter, r *http.Request) {
	if loadErr != nil {
		http.Error(w, loadErr.Error(), http.StatusInternalServerError)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, a.name, zeroTime, bytes.NewReader(a.data))
}
