package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisServer is a redis-server process on a loopback port, killed at the
// end of the test.
type redisServer struct {
	port     int
	password string
	dir      string
}

// redisOptions configure startRedis.
type redisOptions struct {
	dir        string // working directory (--dir); created if missing
	dbfilename string // default dump.rdb
	password   string // --requirepass when set
}

const (
	redisStartTimeout = 60 * time.Second
	redisCallTimeout  = 30 * time.Second
)

// startRedis starts a redis-server on a free loopback port with nothing
// saved on its own (--save "", no AOF), and waits until it answers PING.
// A port taken between choosing and binding it is retried with another one.
func startRedis(t *testing.T, opts redisOptions) *redisServer {
	t.Helper()
	if opts.dbfilename == "" {
		opts.dbfilename = "dump.rdb"
	}
	if err := os.MkdirAll(opts.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 5 {
		srv := &redisServer{port: freePort(t), password: opts.password, dir: opts.dir}
		err := srv.start(t, opts)
		if err == nil {
			return srv
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("starting redis-server in %s: %v", opts.dir, lastErr)
	return nil
}

var errPortTaken = errors.New("port already in use")

func (s *redisServer) start(t *testing.T, opts redisOptions) error {
	logFile := filepath.Join(opts.dir, fmt.Sprintf("redis-%d.log", s.port))
	args := []string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--protected-mode", "yes",
		"--dir", opts.dir, "--dbfilename", opts.dbfilename,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", logFile,
	}
	if opts.password != "" {
		args = append(args, "--requirepass", opts.password)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, redis.server, args...)
	if err := cmd.Start(); err != nil {
		cancel()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cancel()
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("redis-server on port %d did not exit after being killed", s.port)
		}
	}

	deadline := time.Now().Add(redisStartTimeout)
	for {
		select {
		case <-exited:
			cancel()
			log, _ := os.ReadFile(logFile)
			if strings.Contains(string(log), "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("redis-server exited; its log:\n%s", log)
		default:
		}
		if out, err := s.cli(nil, "ping"); err == nil && strings.TrimSpace(out) == "PONG" {
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("no PONG within %s; its log:\n%s", redisStartTimeout, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli runs redis-cli against the server, with stdin (nil for none); the
// password goes through REDISCLI_AUTH.
func (s *redisServer) cli(stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, redis.cli, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir}
	if s.password != "" {
		cmd.Env = append(cmd.Env, "REDISCLI_AUTH="+s.password)
	}
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// conn opens a RESP connection to the server (authenticated if needed).
func (s *redisServer) conn(t *testing.T) *respConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), redisCallTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	conn := &respConn{c: c, r: bufio.NewReader(c)}
	if s.password != "" {
		if reply, err := conn.do("AUTH", s.password); err != nil || reply != "OK" {
			t.Fatalf("AUTH: %v %v", reply, err)
		}
	}
	return conn
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// cliQuote quotes s as one redis-cli argument read from stdin (sdssplitargs
// syntax): binary safe, unlike a command-line argument.
func cliQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// respConn is a minimal RESP2 client, so that what redis-cli wrote is read
// back through a different, binary-exact path.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

type respError string

func (e respError) Error() string { return string(e) }

// do sends one command. Replies: string (simple), []byte (bulk), nil,
// int64, []any (array); an error reply is returned as a respError.
func (c *respConn) do(args ...string) (any, error) {
	if err := c.c.SetDeadline(time.Now().Add(redisCallTimeout)); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *respConn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	payload := line[1:]
	switch line[0] {
	case '+':
		return payload, nil
	case '-':
		return nil, respError(payload)
	case ':':
		return strconv.ParseInt(payload, 10, 64)
	case '$':
		n, err := strconv.Atoi(payload)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return buf[:n], nil
	case '*':
		n, err := strconv.Atoi(payload)
		if err != nil || n < 0 {
			return nil, err
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = c.read(); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("unexpected RESP line %q", line)
}
