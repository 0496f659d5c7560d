package logging

import (
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestCapVerbosityDropsVerboseMessagesOfDerivedLoggers(t *testing.T) {
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 100})
	logger := CapVerbosity(base, 5).WithName("x").WithValues("k", "v")

	logger.Info("level 0")
	logger.V(5).Info("level 5")
	logger.V(6).Info("level 6 dropped")
	logger.V(2).V(4).Info("level 6 dropped too")
	if logger.V(8).Enabled() {
		t.Error("V(8) must report disabled so callers skip building bodies")
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), lines)
	}
	logger.Error(nil, "errors always pass")
	if len(lines) != 3 {
		t.Fatal("errors must not be dropped")
	}
}
