package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
)

// TestDocsLinksResolve checks every link between the repository's Markdown
// files: a relative link names a file or folder that exists, and a #fragment
// names a heading of the Markdown file it points into (GitHub's anchors).
// Links to other sites are not followed: there is no internet here.
func TestDocsLinksResolve(t *testing.T) {
	files, err := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md").Output()
	if err != nil {
		t.Fatalf("listing the Markdown files: %v", err)
	}
	docs := strings.Fields(string(files))
	if len(docs) < 5 {
		t.Fatalf("found only %d Markdown files: %v", len(docs), docs)
	}
	anchors := map[string]map[string]bool{} // file → its heading anchors
	links := map[string][]string{}          // file → its link destinations
	for _, doc := range docs {
		anchors[doc], links[doc] = readMarkdown(t, doc)
	}
	checked := 0
	for _, doc := range docs {
		for _, dest := range links[doc] {
			if err := checkLink(doc, dest, anchors); err != nil {
				t.Errorf("%s: link %q: %v", doc, dest, err)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d links; is the parser finding them?", checked)
	}
	t.Logf("%d links in %d files resolve", checked, len(docs))
}

func checkLink(from, dest string, anchors map[string]map[string]bool) error {
	u, err := url.Parse(dest)
	if err != nil {
		return err
	}
	if u.Scheme != "" || u.Host != "" {
		return nil // another site, or mailto:
	}
	target := from
	if u.Path != "" {
		target = filepath.Join(filepath.Dir(from), u.Path)
		if _, err := os.Stat(target); err != nil {
			return fmt.Errorf("%s does not exist", target)
		}
	}
	if u.Fragment == "" {
		return nil
	}
	known, isMarkdown := anchors[filepath.ToSlash(target)]
	if !isMarkdown {
		return fmt.Errorf("a #fragment into %s, which is not a Markdown file of the repository", target)
	}
	if !known[u.Fragment] {
		return fmt.Errorf("%s has no heading with the anchor #%s", target, u.Fragment)
	}
	return nil
}

// readMarkdown returns the anchors of a file's headings and the destinations
// of its links and images.
func readMarkdown(t *testing.T, path string) (map[string]bool, []string) {
	source, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	var links []string
	doc := goldmark.New().Parser().Parse(text.NewReader(source))
	err = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			slug := githubSlug(plainText(n, source))
			if k := seen[slug]; k > 0 {
				anchors[fmt.Sprintf("%s-%d", slug, k)] = true
			} else {
				anchors[slug] = true
			}
			seen[slug]++
		case *ast.Link:
			links = append(links, string(n.Destination))
		case *ast.Image:
			links = append(links, string(n.Destination))
		}
		return ast.WalkContinue, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return anchors, links
}

func plainText(n ast.Node, source []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if t, ok := c.(*ast.Text); ok && entering {
			b.Write(t.Segment.Value(source))
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// githubSlug is the anchor GitHub gives a heading: lower case, punctuation
// dropped, spaces turned into hyphens.
func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestGithubSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Operating the operator":                     "operating-the-operator",
		"The admission policy (`config/policy`, on)": "the-admission-policy-configpolicy-on",
		"1. First sync":                              "1-first-sync",
		"Design: memory at 10,000 resources":         "design-memory-at-10000-resources",
		"What GitOps tools see":                      "what-gitops-tools-see",
		"`kubectl get` columns":                      "kubectl-get-columns",
	} {
		if got := githubSlug(heading); got != want {
			t.Errorf("githubSlug(%q) = %q, want %q", heading, got, want)
		}
	}
}
