package rtmp

import (
	"context"
	"io"
	"log/slog"

	"github.com/sirupsen/logrus"
)

// slogFormatter sends go-rtmp's logrus entries to slog at Debug level (go-rtmp is chatty at Info).
type slogFormatter struct{ log *slog.Logger }

func (f slogFormatter) Format(e *logrus.Entry) ([]byte, error) {
	attrs := make([]slog.Attr, 0, len(e.Data)+1)
	attrs = append(attrs, slog.String("lib_level", e.Level.String()))
	for k, v := range e.Data {
		attrs = append(attrs, slog.Any(k, v))
	}
	f.log.LogAttrs(context.Background(), slog.LevelDebug, "go-rtmp: "+e.Message, attrs...)
	return nil, nil
}

// newLogrus returns a logrus logger that writes into log at Debug, or drops everything cheaply when
// Debug is off.
func newLogrus(log *slog.Logger) *logrus.Logger {
	l := logrus.New()
	l.Out = io.Discard
	l.Formatter = slogFormatter{log: log.With("component", "go-rtmp")}
	l.Level = logrus.PanicLevel
	if log.Enabled(context.Background(), slog.LevelDebug) {
		l.Level = logrus.DebugLevel
	}
	return l
}
