// Command bench runs the operator's benchmark (`make bench`): the real
// manager against a local control plane and the API simulator, compared
// with a bare client doing the same writes. It prints the figures as
// markdown and writes them into docs/benchmarks.md. BENCH_* variables
// configure it; see internal/bench and the document's header.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dezai/uredis-backup-operator/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench failed:", err)
		os.Exit(1)
	}
}

func run() error {
	// The harness's own clients log only errors; progress goes to stderr,
	// the report to stdout.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	cfg, err := bench.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if cfg.Only == "fanout" {
		return fanout(ctx, cfg, logf)
	}
	res, err := bench.Run(ctx, cfg, logf)
	if err != nil {
		return err
	}
	section := bench.Section(res)
	fmt.Print(section)
	if cfg.Output == "" {
		return nil
	}
	if err := bench.UpdateDoc(cfg.Output, cfg.N, section); err != nil {
		return err
	}
	logf("wrote %s", cfg.Output)
	return nil
}

// fanout measures only the fan-out figure (BENCH_ONLY=fanout) and writes
// it into its own section.
func fanout(ctx context.Context, cfg bench.Config, logf func(string, ...any)) error {
	res, err := bench.RunFanout(ctx, cfg, logf)
	if err != nil {
		return err
	}
	section := bench.FanoutSection(res)
	fmt.Print(section)
	if cfg.Output == "" {
		return nil
	}
	if err := bench.UpdateFanoutDoc(cfg.Output, cfg.FanoutNamespaces, section); err != nil {
		return err
	}
	logf("wrote %s", cfg.Output)
	return nil
}
