package manifests

// Docker itself is not available on the build machines, so these tests
// prove the image's build step, not the image: they stage what the builder
// stage COPYs (minus .dockerignore) in a temporary directory, run its
// `go build` command there with the environment it sets and the VERSION
// build argument, and run the binary it produces. They also check that the
// final stage runs that binary on distroless as the nonroot user, as the
// Deployment expects.

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// testVersion is passed as the VERSION build argument, as
// `make docker-build VERSION=...` does.
const testVersion = "v0.0.0-manifest-test"

func TestDockerfileBuildsTheManager(t *testing.T) {
	g := NewWithT(t)
	stages := parseDockerfile(t)
	index, run := builderStage(t, stages)
	builder := stages[index]

	root := t.TempDir() // the builder's filesystem
	binary, vars := stageBuilder(t, builder, run, root, map[string]string{"VERSION": testVersion})
	g.Expect(vars).To(HaveKeyWithValue("VERSION", testVersion))

	t.Run("the final stage copies the built binary", func(t *testing.T) {
		final := stages[len(stages)-1]
		from, src, _ := finalCopy(t, final)
		NewWithT(t).Expect(from).To(BeElementOf(builder.name, strconv.Itoa(index)), "the final stage copies from another stage than the builder")
		NewWithT(t).Expect(filepath.Join(root, src)).To(Equal(binary), "the final stage copies %s, the build writes elsewhere", src)
	})

	t.Run("--help lists the manager's flags, including the Deployment's", func(t *testing.T) {
		g := NewWithT(t)
		out, err := exec.Command(binary, "--help").CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), "%s --help:\n%s", binary, out)
		// Go's flag package lists each flag on a line of its own, with a
		// single dash.
		listsFlag := func(name string) types.GomegaMatcher {
			return MatchRegexp(`(?m)^\s+-` + regexp.QuoteMeta(name) + `(\s|$)`)
		}
		g.Expect(string(out)).To(listsFlag("api-endpoint"))
		for _, arg := range managerContainer(t, managerDeployment(t)).Args {
			name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			g.Expect(string(out)).To(listsFlag(name), "the Deployment passes %s, which the manager does not define", arg)
		}
	})

	t.Run("the binary starts and reports the VERSION build argument", func(t *testing.T) {
		NewWithT(t).Expect(startupVersion(t, binary)).To(Equal(testVersion))
	})
}

func TestDockerfileFinalStage(t *testing.T) {
	g := NewWithT(t)
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	g.Expect(final.image).To(HavePrefix("gcr.io/distroless/"))
	g.Expect(final.image).To(MatchRegexp(`:nonroot(@sha256:[0-9a-f]+)?$`))
	g.Expect(final.last("USER")).To(Equal("65532:65532"))

	var entrypoint []string
	g.Expect(json.Unmarshal([]byte(final.last("ENTRYPOINT")), &entrypoint)).To(Succeed(), "ENTRYPOINT must be in exec (JSON) form")
	_, _, dest := finalCopy(t, final)
	g.Expect(entrypoint).To(Equal([]string{dest}), "the ENTRYPOINT does not run the copied binary")

	// The Deployment runs the same binary as the same user.
	d := managerDeployment(t)
	c := managerContainer(t, d)
	if len(c.Command) > 0 {
		g.Expect(c.Command[0]).To(Equal(dest), "the Deployment's command is not the image's binary")
	}
	if sc := d.Spec.Template.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		g.Expect(*sc.RunAsUser).To(BeEquivalentTo(65532))
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

// stage is one FROM section of the Dockerfile.
type stage struct {
	image, name  string
	instructions []instruction
}

// last returns the arguments of the stage's last instruction cmd.
func (s stage) last(cmd string) string {
	args := ""
	for _, in := range s.instructions {
		if in.cmd == cmd {
			args = in.args
		}
	}
	return args
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var stages []stage
	var current strings.Builder
	for line := range strings.Lines(string(content)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments may sit between continuation lines
		}
		if joined, ok := strings.CutSuffix(line, `\`); ok {
			current.WriteString(joined + " ")
			continue
		}
		current.WriteString(line)
		cmd, args, _ := strings.Cut(current.String(), " ")
		current.Reset()
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			for len(fields) > 1 && strings.HasPrefix(fields[0], "--") {
				fields = fields[1:] // --platform=...
			}
			s := stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			continue // ARGs before the first FROM
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	NewWithT(t).Expect(stages).NotTo(BeEmpty(), "the Dockerfile has no FROM")
	return stages
}

// builderStage returns the index of the stage with the `go build` RUN, and
// that RUN.
func builderStage(t *testing.T, stages []stage) (int, instruction) {
	t.Helper()
	index, found := -1, 0
	var run instruction
	for i, s := range stages {
		for _, in := range s.instructions {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				index, run, found = i, in, found+1
			}
		}
	}
	if found != 1 {
		t.Fatalf("want one RUN with `go build` in the Dockerfile, got %d", found)
	}
	return index, run
}

// stageBuilder replays the builder stage up to run in root (WORKDIR, ARG,
// ENV and COPY from the build context), runs run's `go build` and returns
// the path of the binary it wrote and the stage's variables.
func stageBuilder(t *testing.T, builder stage, run instruction, root string, buildArgs map[string]string) (string, map[string]string) {
	t.Helper()
	ignored := dockerignore(t)
	vars, env := map[string]string{}, []string{}
	workdir := "/"
	for _, in := range builder.instructions {
		switch in.cmd {
		case "ARG":
			name, value, _ := strings.Cut(in.args, "=")
			if arg, ok := buildArgs[name]; ok {
				value = arg
			}
			vars[name] = value
		case "ENV":
			name, value, ok := strings.Cut(in.args, "=")
			if !ok {
				name, value, _ = strings.Cut(in.args, " ")
			}
			vars[name] = strings.Trim(strings.TrimSpace(value), `"`)
			env = append(env, name+"="+vars[name])
		case "WORKDIR":
			workdir = path.Join(workdir, in.args)
		case "COPY":
			copyFromContext(t, in.args, workdir, root, ignored)
		case "ADD":
			t.Fatalf("ADD %s: not supported by this test", in.args)
		}
		if in == run {
			break
		}
	}

	words := goBuildCommand(t, run.args, vars)
	// Leading NAME=value words are the command's environment.
	for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
		env, words = append(env, words[0]), words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("cannot read the go build command in RUN %s", run.args)
	}
	binary := ""
	for i, w := range words {
		if w == "-o" && i+1 < len(words) {
			binary = filepath.Join(root, path.Join(workdir, words[i+1]))
			words[i+1] = binary
		}
	}
	if binary == "" {
		t.Fatalf("the go build command has no -o: %q", words)
	}
	NewWithT(t).Expect(os.MkdirAll(filepath.Join(root, workdir), 0o755)).To(Succeed())

	cmd := exec.Command("go", words[1:]...)
	cmd.Dir = filepath.Join(root, workdir)
	cmd.Env = append(os.Environ(), env...)
	t.Logf("in %s: %q %q", workdir, env, words)
	out, err := cmd.CombinedOutput()
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "the Dockerfile's go build failed:\n%s", out)
	return binary, vars
}

// goBuildCommand splits the `go build` command of a RUN into words, the
// way the shell would: quotes removed, $VAR and ${VAR} replaced.
func goBuildCommand(t *testing.T, run string, vars map[string]string) []string {
	t.Helper()
	for command := range strings.SplitSeq(run, "&&") {
		if strings.Contains(command, "go build") {
			words, err := shellWords(command, vars)
			if err != nil {
				t.Fatalf("RUN %s: %v", run, err)
			}
			return words
		}
	}
	panic("unreachable: the RUN contains go build")
}

// shellWords splits s into words like a POSIX shell without operators:
// single quotes are literal, double quotes and bare words expand variables,
// a backslash escapes the next character.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord, quote := false, byte(0)
	expand := func(i int) (int, error) { // s[i] is '$'; returns the last index used
		name, end := "", i
		if strings.HasPrefix(s[i+1:], "{") {
			closing := strings.IndexByte(s[i:], '}')
			if closing < 0 {
				return 0, errors.New("unterminated ${")
			}
			name, end = s[i+2:i+closing], i+closing
		} else {
			name = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`).FindString(s[i+1:])
			end = i + len(name)
		}
		value, ok := vars[name]
		if !ok {
			return 0, errors.New("unknown variable $" + name + " (not an ARG or ENV of the stage)")
		}
		word.WriteString(value)
		return end, nil
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		var err error
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				word.WriteByte(ch)
			}
		case quote == '"':
			switch {
			case ch == '"':
				quote = 0
			case ch == '$':
				i, err = expand(i)
			case ch == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				i++
				word.WriteByte(s[i])
			default:
				word.WriteByte(ch)
			}
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words, inWord = append(words, word.String()), false
				word.Reset()
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '$':
			i, err = expand(i)
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			word.WriteByte(s[i])
			inWord = true
		default:
			word.WriteByte(ch)
			inWord = true
		}
		if err != nil {
			return nil, err
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// copyFromContext replays COPY <src>... <dest> from the build context (the
// repository) into root, skipping what .dockerignore excludes.
func copyFromContext(t *testing.T, args, workdir, root string, ignored func(string) bool) {
	t.Helper()
	g := NewWithT(t)
	var fields []string
	if strings.HasPrefix(args, "[") {
		g.Expect(json.Unmarshal([]byte(args), &fields)).To(Succeed(), "COPY %s", args)
	} else {
		fields = strings.Fields(args)
	}
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		if strings.HasPrefix(fields[0], "--from=") {
			t.Fatalf("COPY %s: copying from another stage or image in the builder is not supported by this test", args)
		}
		fields = fields[1:] // --chown, --chmod
	}
	g.Expect(len(fields)).To(BeNumerically(">=", 2), "COPY %s", args)
	sources, dest := fields[:len(fields)-1], fields[len(fields)-1]
	intoDir := strings.HasSuffix(dest, "/") || len(sources) > 1
	dest = filepath.Join(root, path.Join(workdir, dest))

	for _, src := range sources {
		matches, err := filepath.Glob(filepath.Join(repoRoot, src))
		g.Expect(err).NotTo(HaveOccurred())
		var found []string
		for _, m := range matches {
			if rel, _ := filepath.Rel(repoRoot, m); !ignored(filepath.ToSlash(rel)) {
				found = append(found, m)
			}
		}
		g.Expect(found).NotTo(BeEmpty(), "COPY %s: %s is not in the build context (missing, or excluded by .dockerignore)", args, src)
		for _, m := range found {
			info, err := os.Stat(m)
			g.Expect(err).NotTo(HaveOccurred())
			switch {
			case info.IsDir(): // a directory's contents are copied
				copyTree(t, m, dest, ignored)
			case intoDir:
				copyFile(t, m, filepath.Join(dest, filepath.Base(m)))
			default:
				copyFile(t, m, dest)
			}
		}
	}
}

func copyTree(t *testing.T, src, dest string, ignored func(string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if rel, _ := filepath.Rel(repoRoot, p); ignored(filepath.ToSlash(rel)) {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		copyFile(t, p, filepath.Join(dest, rel))
		return nil
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
}

func copyFile(t *testing.T, src, dest string) {
	t.Helper()
	content, err := os.ReadFile(src)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(os.MkdirAll(filepath.Dir(dest), 0o755)).To(Succeed())
	NewWithT(t).Expect(os.WriteFile(dest, content, 0o644)).To(Succeed())
}

// dockerignore returns a matcher for the repository's .dockerignore: a
// path is excluded when it or one of its parent directories matches a
// pattern ("**/" matching any number of leading directories). Exceptions
// ("!pattern") are not supported and fail the test.
func dockerignore(t *testing.T) func(rel string) bool {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return func(string) bool { return false }
	}
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var patterns []string
	for line := range strings.Lines(string(content)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exceptions (%s) are not supported by this test", line)
		}
		patterns = append(patterns, strings.TrimSuffix(path.Clean(strings.TrimPrefix(line, "/")), "/"))
	}
	matches := func(pattern, p string) bool {
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			parts := strings.Split(p, "/")
			for i := range parts {
				if ok, _ := path.Match(rest, strings.Join(parts[i:], "/")); ok {
					return true
				}
			}
			return false
		}
		ok, _ := path.Match(pattern, p)
		return ok
	}
	return func(rel string) bool {
		for p := rel; p != "." && p != "/"; p = path.Dir(p) {
			for _, pattern := range patterns {
				if matches(pattern, p) {
					return true
				}
			}
		}
		return false
	}
}

// finalCopy returns the final stage's COPY --from=<stage> <src> <dest>.
func finalCopy(t *testing.T, final stage) (from, src, dest string) {
	t.Helper()
	for _, in := range final.instructions {
		fields := strings.Fields(in.args)
		if in.cmd != "COPY" || len(fields) != 3 || !strings.HasPrefix(fields[0], "--from=") {
			continue
		}
		if from != "" {
			t.Fatalf("the final stage has more than one COPY --from")
		}
		from, src, dest = strings.TrimPrefix(fields[0], "--from="), fields[1], fields[2]
	}
	if from == "" {
		t.Fatal("the final stage has no COPY --from=<builder> <binary> <dest>")
	}
	return from, src, dest
}

// startupVersion runs the binary against the envtest API server and returns
// the version it logs on startup, then stops it.
func startupVersion(t *testing.T, binary string) string {
	t.Helper()
	cmd := exec.Command(binary, "--kubeconfig="+writeKubeconfig(t),
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--api-endpoint=https://127.0.0.1:1/") // never called: no resources exist
	stderr, err := cmd.StderrPipe()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(cmd.Start()).To(Succeed())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	versions := make(chan string, 1)
	var logged strings.Builder
	go func() {
		defer close(versions)
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			logged.WriteString(lines.Text() + "\n")
			var entry struct{ Msg, Version string }
			if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Msg == "starting manager" {
				versions <- entry.Version
				return
			}
		}
	}()
	select {
	case version, ok := <-versions:
		if !ok {
			t.Fatalf("the manager exited without logging \"starting manager\":\n%s", logged.String())
		}
		return version
	case <-time.After(time.Minute):
		t.Fatal("the manager did not log \"starting manager\" within a minute")
		return ""
	}
}

// writeKubeconfig writes a kubeconfig for the envtest API server.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := env.Config
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kubeconfig.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kubeconfig.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kubeconfig.CurrentContext = "envtest"
	file := filepath.Join(t.TempDir(), "kubeconfig")
	NewWithT(t).Expect(clientcmd.WriteToFile(*kubeconfig, file)).To(Succeed())
	return file
}
