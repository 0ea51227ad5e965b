package metrics

import "errors"

// ErrNoHub is returned by New when Deps.Hub is nil.
var ErrNoHub = errors.New("metrics: Deps.Hub is required")
