package bench

import (
	"os"
	"strings"
	"testing"
)

// The benchmark rewrites docs/benchmarks.md from docHeader and keeps the
// runs' sections: a hand edit of the header's text must be made in both, or
// the next run would undo it.
func TestBenchmarksDocStartsWithTheHeader(t *testing.T) {
	doc, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(doc), docHeader) {
		t.Fatal("docs/benchmarks.md does not start with docHeader (internal/bench/doc.go): edit both the same way")
	}
}
