package main

import "errors"

// ErrConfig marks every configuration error (bad YAML, unknown key, invalid value); the message
// names the key and the problem.
var ErrConfig = errors.New("config")
