// Package auth decides who may publish and play: signed tokens (JWT HS256) and SRS-compatible HTTP
// hooks. It implements sfu.Authorizer; adapters take it through their Deps.
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// Modes of Config.Publish and Config.Play.
const (
	ModeNone  = "none"
	ModeToken = "token"
	ModeHook  = "hook"
)

// Hooks lists the SRS-style callbacks, each a list of URLs called in order.
type Hooks struct {
	OnPublish   []string
	OnUnpublish []string
	OnPlay      []string
	OnStop      []string
}

// Config configures an Authorizer. The zero value allows everything.
type Config struct {
	Publish     string        // none | token | hook ("" = none)
	Play        string        // none | token | hook ("" = none)
	Secret      string        // HS256 secret (token mode)
	Hooks       Hooks         // hook URLs
	HookTimeout time.Duration // per hook call (3s)
	ServerID    string        // server_id sent to hooks (the node ID)
}

func (c Config) validate() error {
	for _, m := range []struct{ name, mode string }{{"publish", c.Publish}, {"play", c.Play}} {
		switch m.mode {
		case "", ModeNone:
		case ModeToken:
			if c.Secret == "" {
				return fmt.Errorf("%w: auth.%s: token needs auth.secret", ErrConfig, m.name)
			}
		case ModeHook:
			urls := c.Hooks.OnPublish
			if m.name == "play" {
				urls = c.Hooks.OnPlay
			}
			if len(urls) == 0 {
				return fmt.Errorf("%w: auth.%s: hook needs auth.hooks.on_%s", ErrConfig, m.name, m.name)
			}
		default:
			return fmt.Errorf("%w: auth.%s: %q (want none, token or hook)", ErrConfig, m.name, m.mode)
		}
	}
	return nil
}

// Deps are the Authorizer's collaborators.
type Deps struct {
	Logger *slog.Logger
	Client *http.Client // for hooks (a default client if nil)
	Now    func() time.Time
}

// Authorizer implements sfu.Authorizer and sfu.AuthNotifier. Reload swaps its config at once: new
// clients see the new secret and hooks, authorized ones are untouched.
type Authorizer struct {
	cfg    atomic.Pointer[Config]
	log    *slog.Logger
	client *http.Client
	now    func() time.Time
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New validates cfg and returns an Authorizer.
func New(cfg Config, deps Deps) (*Authorizer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.HookTimeout <= 0 {
		cfg.HookTimeout = 3 * time.Second
	}
	a := &Authorizer{log: deps.Logger, client: deps.Client, now: deps.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "auth")
	if a.client == nil {
		a.client = &http.Client{}
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.cfg.Store(&cfg)
	return a, nil
}

// Reload applies a new config to clients that arrive from now on; an invalid one is refused and the
// running config kept.
func (a *Authorizer) Reload(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.HookTimeout <= 0 {
		cfg.HookTimeout = 3 * time.Second
	}
	a.cfg.Store(&cfg)
	return nil
}

// Close cancels pending notifications and waits for them.
func (a *Authorizer) Close() {
	a.cancel()
	a.wg.Wait()
}

// Authorize implements sfu.Authorizer.
func (a *Authorizer) Authorize(ctx context.Context, r sfu.AuthRequest) error {
	cfg := a.cfg.Load()
	mode, urls := cfg.Publish, cfg.Hooks.OnPublish
	switch r.Action {
	case sfu.ActionPublish:
	case sfu.ActionPlay:
		mode, urls = cfg.Play, cfg.Hooks.OnPlay
	default:
		return fmt.Errorf("%w: unknown action %q", sfu.ErrForbidden, r.Action)
	}
	switch mode {
	case ModeToken:
		c, err := ParseToken([]byte(cfg.Secret), r.Token, a.now())
		if err != nil {
			return err
		}
		if !c.Allows(r.Action, r.Key) {
			return fmt.Errorf("%w (sub %q act %q, asked %s %s)", ErrTokenScope, c.Subject, c.Act, r.Action, r.Key)
		}
		return nil
	case ModeHook:
		for _, u := range urls {
			if err := a.callHook(ctx, cfg, u, "on_"+r.Action, r); err != nil {
				a.log.Info("hook denied", "stream", r.Key, "client_id", r.ClientID, "url", u, "err", err)
				return err
			}
		}
		return nil
	}
	return nil
}

// Notify implements sfu.AuthNotifier: on_unpublish / on_stop hooks, in the background, best effort.
func (a *Authorizer) Notify(r sfu.AuthRequest) {
	cfg := a.cfg.Load()
	var urls []string
	switch r.Action {
	case sfu.ActionUnpub:
		urls = cfg.Hooks.OnUnpublish
	case sfu.ActionStop:
		urls = cfg.Hooks.OnStop
	}
	if len(urls) == 0 || a.ctx.Err() != nil {
		return
	}
	a.wg.Go(func() {
		for _, u := range urls {
			if err := a.callHook(a.ctx, cfg, u, "on_"+r.Action, r); err != nil {
				a.log.Debug("notify hook failed", "stream", r.Key, "url", u, "err", err)
			}
		}
	})
}
