// Package e2e tests the whole path from a Redis backup to a restored Redis:
// a real redis-server writes an RDB file, the API simulator serves it as a
// URedis backup, the operator (the real manager, against a real
// kube-apiserver) keeps its link in a Secret, and the link taken from that
// Secret is downloaded, checked with redis-check-rdb, loaded into a fresh
// redis-server and restored into another one with the sample script
// config/samples/restore/restore.sh.
//
// The tests that run Redis need redis-server, redis-cli and redis-check-rdb
// (Debian package redis-server). Without them they are skipped, unless
// E2E_REQUIRE_REDIS=1 (as in CI), which makes their absence a failure. The
// restore script's own checks need only bash and curl.
package e2e

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

// requireRedisEnv, set to 1, turns missing Redis binaries into a failure.
const requireRedisEnv = "E2E_REQUIRE_REDIS"

var (
	env *testenv.Env
	// redis holds the Redis binaries, or redisErr why they are missing.
	redis    redisTools
	redisErr error
)

type redisTools struct {
	server, cli, checkRDB string
}

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	redis, redisErr = lookupRedis()
	if redisErr != nil {
		// Every test skips (or fails): no control plane needed.
		os.Exit(m.Run())
	}
	os.Exit(testenv.Run(m, func(started *testenv.Env) error {
		env = started
		return nil
	}))
}

func lookupRedis() (redisTools, error) {
	var tools redisTools
	var missing []string
	for _, tool := range []struct {
		name string
		path *string
	}{{"redis-server", &tools.server}, {"redis-cli", &tools.cli}, {"redis-check-rdb", &tools.checkRDB}} {
		path, err := exec.LookPath(tool.name)
		if err != nil {
			missing = append(missing, tool.name)
			continue
		}
		*tool.path = path
	}
	if len(missing) > 0 {
		return tools, errors.New(strings.Join(missing, ", ") + " not found in PATH")
	}
	return tools, nil
}

// requireRedis skips the test when the Redis binaries are missing, or fails
// it when E2E_REQUIRE_REDIS=1.
func requireRedis(t *testing.T) {
	t.Helper()
	if redisErr == nil {
		return
	}
	if os.Getenv(requireRedisEnv) == "1" {
		t.Fatalf("%v, and %s=1 requires them: install the Debian package redis-server (apt-get install redis-server)", redisErr, requireRedisEnv)
	}
	t.Skipf("%v: install the Debian package redis-server (apt-get install redis-server) to run the end-to-end restore test (%s=1 makes this a failure)", redisErr, requireRedisEnv)
}
