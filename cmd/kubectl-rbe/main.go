// Command kubectl-rbe is the kubectl plugin for RedisBackupExports
// (`kubectl rbe get|refresh|url|download`). Install it with
//
//	go install github.com/dezai/uredis-backup-operator/cmd/kubectl-rbe@latest
//
// and kubectl finds it on the PATH. See docs/kubectl-plugin.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dezai/uredis-backup-operator/internal/plugin"
)

func main() {
	// The client logs nothing worth showing; a plugin prints its own errors.
	ctrllog.SetLogger(logr.Discard())
	// Ctrl-C stops a wait or a download cleanly (a partial download is
	// kept for the next run to resume).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := plugin.Execute(ctx, plugin.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}), os.Args[1:])
	stop()
	os.Exit(code)
}
