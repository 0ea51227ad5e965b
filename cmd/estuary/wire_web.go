package main

import "github.com/estuary-media/estuary/web"

// wireWeb serves the browser pages under / (GET and HEAD; unknown paths 404).
func wireWeb(a *app) error {
	a.pages = web.Handler()
	a.pageURLs = []urlLine{
		{"page: publish", "/publish.html"},
		{"page: play", "/play.html"},
		{"page: dashboard", "/dashboard.html"},
	}
	return nil
}
