package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/estuary-media/estuary/auth"
)

// runToken is `estuary token [-c FILE | -secret S] -stream KEY -action publish|play|* -ttl D`: it
// prints a JWT HS256 token signed with auth.secret (or -secret).
func runToken(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("estuary token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file whose auth.secret signs the token")
	secret := fs.String("secret", "", "secret to sign with (instead of -c)")
	stream := fs.String("stream", "", `stream key the token covers ("live/test", "live/*", "call/ROOM", "*")`)
	action := fs.String("action", "play", "publish, play or *")
	ttl := fs.Duration("ttl", time.Hour, "validity")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: estuary token [-c FILE | -secret S] -stream KEY [-action publish|play|*] [-ttl 1h]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *stream == "" || fs.NArg() > 0 || *ttl <= 0 {
		fs.Usage()
		return 2
	}
	key := *secret
	if key == "" {
		cfg, err := Load(*path, environ)
		if err != nil {
			fmt.Fprintf(stderr, "estuary token: invalid config: %v\n", err)
			return 1
		}
		key = cfg.Auth.Secret
	}
	if key == "" {
		fmt.Fprintln(stderr, "estuary token: no secret: set auth.secret in the config (-c) or pass -secret")
		return 1
	}
	tok, err := auth.Sign([]byte(key), *stream, *action, time.Now(), *ttl)
	if err != nil {
		fmt.Fprintf(stderr, "estuary token: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
