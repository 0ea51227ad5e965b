// Command estuary runs one Estuary node: `estuary [-c FILE] [-print-config]`, `estuary token ...`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// defaultGCPercent is the GC target unless GOGC says otherwise: the media paths allocate nothing per
// packet, so a tighter heap goal costs little CPU and cuts the memory each viewer's buffers and
// goroutines leave behind (docs/benchmarks.md: about 0.1 MB of RSS per WHEP viewer).
const defaultGCPercent = 50

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// run is main without the process: it returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "token" {
		return runToken(args[1:], environ, stdout, stderr)
	}
	fs := flag.NewFlagSet("estuary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (YAML); defaults apply to every key it leaves out")
	printConfig := fs.Bool("print-config", false, "print the effective config as YAML and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: estuary [-c FILE] [-print-config]\n       estuary token ...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "estuary: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	cfg, err := Load(*path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "estuary: invalid config: %v\n", err)
		return 1
	}
	if *printConfig {
		out, err := cfg.Marshal()
		if err != nil {
			fmt.Fprintf(stderr, "estuary: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(out)
		return 0
	}

	log, level := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := newApp(cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if err := a.start(); err != nil {
		log.Error("start", "err", err)
		a.shutdown()
		return 1
	}
	a.printURLs(stdout)
	a.reloaders = append(a.reloaders, func(c Config) { level.Set(logLevel(c.Log.Level)) })
	// SIGHUP reloads the config file and applies what can change live (a.reload); a bad file is
	// reported and the running config kept.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	code := 0
wait:
	for {
		select {
		case <-hup:
			a.reload(*path, environ)
		case <-ctx.Done():
			a.draining.Store(true) // /readyz says draining from here on
			log.Info("signal received, shutting down", "timeout", cfg.ShutdownTimeout)
			break wait
		case err := <-a.failed:
			log.Error("service failed, shutting down", "err", err)
			code = 1
			break wait
		}
	}
	stop()
	if !a.shutdown() {
		log.Warn("shutdown timed out; connections were closed")
	}
	log.Info("stopped")
	return code
}

// newLogger builds the process logger (log.level, log.format) with a LevelVar.
func newLogger(c LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(logLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), level
}

// logLevel maps log.level to slog's (info for anything else).
func logLevel(name string) slog.Level {
	switch name {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
