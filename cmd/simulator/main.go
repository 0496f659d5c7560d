// Command simulator serves the simulated cloud API (see internal/simulator)
// for demos and manual testing of the operator.
//
//	simulator --config cmd/simulator/example-config.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

func main() {
	if err := run(); err != nil {
		log.Fatalf("simulator: %v", err)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8089", "address to serve the API on")
	configPath := flag.String("config", "", "YAML or JSON file with accounts and backups")
	linkLifetime := flag.Duration("link-lifetime", 0, "lifetime of returned download links (overrides the config file)")
	flag.Parse()

	if *configPath == "" {
		return errors.New("--config is required (see cmd/simulator/example-config.yaml)")
	}
	cfg, faults, faultRate, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *linkLifetime > 0 {
		cfg.LinkLifetime = *linkLifetime
	}
	// The simulator logs actions and RetCodes only, never keys or links.
	cfg.Logf = log.Printf

	sim := simulator.New(cfg)
	defer sim.Close()
	if len(faults) > 0 {
		sim.SetFaultRate(faultRate, faults...)
	}
	return serve(*listen, sim.Handler(), len(cfg.Accounts), len(cfg.Backups))
}

// serve runs until SIGINT or SIGTERM, then lets in-flight calls finish.
func serve(addr string, handler http.Handler, accounts, backups int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	log.Printf("simulator: API endpoint %s (%d accounts, %d backups)", endpoint(ln.Addr()), accounts, backups)

	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Printf("simulator: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// endpoint is the base URL clients should use; a wildcard listen address is
// shown as loopback, which is always one of the reachable addresses.
func endpoint(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String() + "/"
	}
	host := tcp.IP
	if host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
	}
	return "http://" + net.JoinHostPort(host.String(), fmt.Sprint(tcp.Port)) + "/"
}
