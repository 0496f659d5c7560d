// Package logging holds the operator's logging safeguards.
package logging

import "github.com/go-logr/logr"

// MaxVerbosity is the most verbose V-level the operator ever emits. client-go
// logs request and response bodies through the same contextual logger from
// V(8) on (URLs and headers from V(6)), and those bodies are Secrets: the
// credentials and the bearer link. However verbose the configured level, such
// messages are dropped.
const MaxVerbosity = 5

// CapVerbosity returns a logger that drops every message more verbose than
// maxLevel, whatever the level its sink is set to. Loggers derived from it
// (WithName, WithValues, V) keep the cap.
func CapVerbosity(logger logr.Logger, maxLevel int) logr.Logger {
	sink := logger.GetSink()
	if sink == nil {
		return logger
	}
	return logr.New(&cappedSink{LogSink: sink, maxLevel: maxLevel}).WithCallDepth(0)
}

type cappedSink struct {
	logr.LogSink
	maxLevel int
}

func (s *cappedSink) Enabled(level int) bool {
	return level <= s.maxLevel && s.LogSink.Enabled(level)
}

func (s *cappedSink) Info(level int, msg string, keysAndValues ...any) {
	if level <= s.maxLevel {
		s.LogSink.Info(level, msg, keysAndValues...)
	}
}

func (s *cappedSink) WithValues(keysAndValues ...any) logr.LogSink {
	return &cappedSink{LogSink: s.LogSink.WithValues(keysAndValues...), maxLevel: s.maxLevel}
}

func (s *cappedSink) WithName(name string) logr.LogSink {
	return &cappedSink{LogSink: s.LogSink.WithName(name), maxLevel: s.maxLevel}
}

// WithCallDepth keeps caller information pointing at the real call site.
func (s *cappedSink) WithCallDepth(depth int) logr.LogSink {
	if withDepth, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return &cappedSink{LogSink: withDepth.WithCallDepth(depth), maxLevel: s.maxLevel}
	}
	return s
}
