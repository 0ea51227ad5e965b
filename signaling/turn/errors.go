package turn

import "errors"

var (
	// ErrBadConfig: a Config field is unusable (listen address, public IP, denied peer).
	ErrBadConfig = errors.New("bad turn config")
	// ErrListen: the UDP or TCP listener could not be opened on Config.Listen.
	ErrListen = errors.New("turn listen")
)
