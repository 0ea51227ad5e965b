package web

import "errors"

// ErrAssets means the embedded files could not be indexed (a broken build); Handler then answers 500
// with this error's text.
var ErrAssets = errors.New("web: embedded assets unreadable")
