package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPagesServed(t *testing.T) {
	h := Handler()
	cases := []struct {
		name, path, contentType, contains string
	}{
		{name: "index", path: "/", contentType: "text/html; charset=utf-8", contains: "Live streams"},
		{name: "index by name", path: "/index.html", contentType: "text/html; charset=utf-8", contains: "Live streams"},
		{name: "publish", path: "/publish.html", contentType: "text/html; charset=utf-8", contains: "WHIP"},
		{name: "play", path: "/play.html", contentType: "text/html; charset=utf-8", contains: "webrtc://"},
		{name: "call", path: "/call.html", contentType: "text/html; charset=utf-8", contains: "call.js"},
		{name: "dashboard", path: "/dashboard.html", contentType: "text/html; charset=utf-8", contains: "dashboard.js"},
		{name: "whip client", path: "/static/js/whip.js", contentType: "text/javascript; charset=utf-8", contains: "export async function publish"},
		{name: "style", path: "/static/css/estuary.css", contentType: "text/css; charset=utf-8", contains: "body"},
		{name: "icon", path: "/static/favicon.svg", contentType: "image/svg+xml", contains: "<svg"},
		{name: "hls.js built or stand-in", path: "/static/vendor/hls.min.js", contentType: "text/javascript; charset=utf-8", contains: ""},
		{name: "mpegts.js built or stand-in", path: "/static/vendor/mpegts.js", contentType: "text/javascript; charset=utf-8", contains: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, c.path, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, c.contentType, rec.Header().Get("Content-Type"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			require.NotEmpty(t, rec.Header().Get("ETag"))
			require.NotZero(t, rec.Body.Len())
			require.Contains(t, rec.Body.String(), c.contains)

			// Revalidation: the same ETag answers 304 with no body.
			again := get(t, h, http.MethodGet, c.path, map[string]string{"If-None-Match": rec.Header().Get("ETag")})
			require.Equal(t, http.StatusNotModified, again.Code)
			require.Zero(t, again.Body.Len())

			head := get(t, h, http.MethodHead, c.path, nil)
			require.Equal(t, http.StatusOK, head.Code)
			require.Zero(t, head.Body.Len())
		})
	}
}

func TestRefusals(t *testing.T) {
	h := Handler()
	cases := []struct {
		name, method, path string
		code               int
	}{
		{name: "unknown page", method: http.MethodGet, path: "/nope.html", code: http.StatusNotFound},
		{name: "fallback folder is not served directly", method: http.MethodGet, path: "/static/vendor-fallback/hls.min.js", code: http.StatusNotFound},
		{name: "pages are not under static", method: http.MethodGet, path: "/static/play.html", code: http.StatusNotFound},
		{name: "directory", method: http.MethodGet, path: "/static/js/", code: http.StatusNotFound},
		{name: "traversal", method: http.MethodGet, path: "/static/../web.go", code: http.StatusNotFound},
		{name: "post", method: http.MethodPost, path: "/", code: http.StatusMethodNotAllowed},
		{name: "delete", method: http.MethodDelete, path: "/play.html", code: http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := get(t, h, c.method, c.path, nil)
			require.Equal(t, c.code, rec.Code)
			if c.code == http.StatusMethodNotAllowed {
				require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
			}
		})
	}
}

var (
	// src="..." and href="..." in pages.
	htmlRef = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	// import ... from './x.js' and import('./x.js') in modules.
	jsImport = regexp.MustCompile(`(?:from\s+|import\s*\(\s*)['"](\.{1,2}/[^'"]+)['"]`)
)

// servedElsewhere lists paths other packages serve (the API, WHIP, WHEP, metrics): links to them are not assets.
var servedElsewhere = []string{"api/", "whip/", "whep/", "ws/", "metrics"}

// TestReferencedAssetsExist follows every src/href of every page and every import of every module
// and requires each to be served with a known content type.
func TestReferencedAssetsExist(t *testing.T) {
	h := Handler()
	base, err := url.Parse("http://estuary.test/")
	require.NoError(t, err)

	var pages []string
	require.NoError(t, fs.WalkDir(FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(name, "/") && strings.HasSuffix(name, ".html") {
			pages = append(pages, "/"+name)
		}
		return err
	}))
	require.Contains(t, pages, "/index.html")
	require.Contains(t, pages, "/publish.html")
	require.Contains(t, pages, "/play.html")
	require.Contains(t, pages, "/call.html")
	require.Contains(t, pages, "/dashboard.html")

	seen := map[string]bool{}
	queue := append([]string(nil), pages...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		t.Run(p, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, p, nil)
			require.Equal(t, http.StatusOK, rec.Code, "referenced asset %s", p)
			require.Equal(t, ContentType(p), rec.Header().Get("Content-Type"))
			from, err := base.Parse(p)
			require.NoError(t, err)
			var refs []string
			switch path.Ext(p) {
			case ".html":
				for _, m := range htmlRef.FindAllStringSubmatch(rec.Body.String(), -1) {
					refs = append(refs, m[1])
				}
			case ".js":
				for _, m := range jsImport.FindAllStringSubmatch(rec.Body.String(), -1) {
					refs = append(refs, m[1])
				}
			}
			for _, ref := range refs {
				if strings.HasPrefix(ref, "#") || strings.Contains(ref, "://") || strings.HasPrefix(ref, "mailto:") {
					continue
				}
				u, err := from.Parse(ref)
				require.NoError(t, err, ref)
				rel := strings.TrimPrefix(u.Path, "/")
				if slicesHasPrefix(servedElsewhere, rel) {
					continue
				}
				if u.Path == "/" {
					continue // the index itself
				}
				queue = append(queue, u.Path)
			}
		})
	}
	require.Contains(t, seen, "/static/js/whip.js")
	require.Contains(t, seen, "/static/js/publish.js")
	require.Contains(t, seen, "/static/js/play.js")
	require.Contains(t, seen, "/static/js/index.js")
	require.Contains(t, seen, "/static/js/ui.js")
}

func slicesHasPrefix(prefixes []string, s string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestEveryFileHasAContentType keeps new asset kinds from being served as guesses.
func TestEveryFileHasAContentType(t *testing.T) {
	for _, p := range Paths() {
		if strings.HasSuffix(p, "/") {
			continue
		}
		require.NotEmpty(t, ContentType(p), "no content type for %s: add its extension to contentTypes", p)
	}
}

// TestVendorPrecedence: a library built by scripts/web.sh wins over its committed stand-in, and the
// stand-in is served when the build did not run.
func TestVendorPrecedence(t *testing.T) {
	h := Handler()
	for _, name := range []string{"hls.min.js", "mpegts.js"} {
		t.Run(name, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, "/static/vendor/"+name, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			if _, err := fs.Stat(FS(), "vendor/"+name); err == nil {
				require.NotContains(t, rec.Body.String(), "estuaryVendorMissing")
				require.Greater(t, rec.Body.Len(), 100_000, "the real library")
			} else {
				require.Contains(t, rec.Body.String(), "estuaryVendorMissing")
			}
		})
	}
}
