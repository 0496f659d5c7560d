package main

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestDockerfile reads the Dockerfile (there is no Docker engine to build it
// with here): the image's binary is built by the command `make build` runs,
// from sources the builder stage copies, and runs on distroless as the
// nonroot user.
func TestDockerfile(t *testing.T) {
	repoRoot, err := os.Getwd() // a test runs in its package's directory, here the root
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	content, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	// One instruction a line, continuations joined, comments dropped; final
	// holds the last stage's.
	var instructions, final []string
	for line := range strings.Lines(strings.ReplaceAll(string(content), "\\\n", " ")) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "FROM ") {
				final = nil
			}
			instructions, final = append(instructions, line), append(final, line)
		}
	}
	withPrefix := func(lines []string, prefix string) (found []string) {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				found = append(found, strings.TrimPrefix(l, prefix))
			}
		}
		return found
	}

	t.Run("the builder runs the command of make build", func(t *testing.T) {
		g := NewWithT(t)
		const version = "v0.0.0-dockerfile-test" // what the VERSION build argument becomes
		g.Expect(withPrefix(instructions, "ARG ")).To(ContainElement(HavePrefix("VERSION")))
		docker := goBuildWords(strings.ReplaceAll(strings.Join(withPrefix(instructions, "RUN "), "\n"), "${VERSION}", version))
		g.Expect(docker).NotTo(BeEmpty(), "no RUN of the Dockerfile runs go build")
		cmd := exec.Command("make", "--dry-run", "--no-print-directory", "build", "VERSION="+version)
		cmd.Dir = repoRoot
		// Not a sub-make of `make test`: none of its flags or variables.
		cmd.Env = slices.DeleteFunc(os.Environ(), func(v string) bool {
			return strings.HasPrefix(v, "MAKE") || strings.HasPrefix(v, "MFLAGS=")
		})
		out, err := cmd.Output()
		g.Expect(err).NotTo(HaveOccurred(), "make --dry-run build")
		g.Expect(docker).To(Equal(goBuildWords(string(out))))
		// What the shared command must keep: a static binary that names
		// no build machine paths and reports its version.
		g.Expect(docker).To(ContainElements("CGO_ENABLED=0", "-trimpath", HaveSuffix("/internal/version.Version="+version)))
	})

	t.Run("the builder copies every source file of the manager", func(t *testing.T) {
		var copied []string // the build context's paths the COPYs name
		for _, c := range withPrefix(instructions, "COPY ") {
			if fields := strings.Fields(c); !strings.HasPrefix(fields[0], "--") {
				copied = append(copied, fields[:len(fields)-1]...)
			}
		}
		cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`, ".")
		cmd.Dir = repoRoot
		out, err := cmd.Output()
		NewWithT(t).Expect(err).NotTo(HaveOccurred(), "go list")
		for file := range strings.Lines(string(out)) {
			rel, err := filepath.Rel(repoRoot, strings.TrimSpace(file))
			if err != nil || strings.HasPrefix(rel, "..") {
				continue // a module dependency, which `go mod download` fetches
			}
			if !slices.ContainsFunc(copied, func(src string) bool { return rel == src || strings.HasPrefix(rel, strings.TrimSuffix(src, "/")+"/") }) {
				t.Errorf("the manager compiles %s, which no COPY of the Dockerfile brings in", rel)
			}
		}
	})

	t.Run("the image runs the binary the builder built", func(t *testing.T) {
		g := NewWithT(t)
		run := strings.Fields(strings.Join(withPrefix(instructions, "RUN "), " "))
		i := slices.Index(run, "-o")
		g.Expect(i).To(BeNumerically(">=", 0), "the builder's go build names no -o")
		built := path.Join(withPrefix(instructions, "WORKDIR ")[0], run[i+1])
		copied := withPrefix(final, "COPY --from=builder ")
		g.Expect(copied).To(HaveLen(1), "the final stage copies one file from the builder")
		from, to, _ := strings.Cut(copied[0], " ")
		g.Expect(from).To(Equal(built))
		g.Expect(withPrefix(final, "ENTRYPOINT ")).To(HaveExactElements(`["` + to + `"]`))
	})

	t.Run("the image is distroless and runs as the nonroot user", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(final[0]).To(MatchRegexp(`^FROM gcr\.io/distroless/[a-z0-9-]+:nonroot(@sha256:[0-9a-f]{64})?$`))
		// By number: with the Deployment's runAsNonRoot, the kubelet
		// refuses a named USER unless the Pod also sets runAsUser.
		g.Expect(withPrefix(final, "USER ")).To(HaveExactElements(MatchRegexp(`^65532(:65532)?$`)))
	})
}

// goBuildWords returns the words of the first `go build` command in a script,
// quotes dropped (the -ldflags value splits into its flags) and the -o path
// left out: the image and `make build` write the binary to different places.
func goBuildWords(script string) []string {
	for _, command := range regexp.MustCompile(`&&|;|\n`).Split(script, -1) {
		if strings.Contains(command, "go build") {
			words := strings.Fields(strings.NewReplacer(`"`, "", "'", "").Replace(command))
			if i := slices.Index(words, "-o"); i >= 0 && i+1 < len(words) {
				words = slices.Delete(words, i, i+2)
			}
			return words
		}
	}
	return nil
}
