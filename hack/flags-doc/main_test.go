package main

import (
	"strings"
	"testing"
)

const help = `Usage of /tmp/manager:
  -api-endpoint string
    	Base URL of the cloud API. (default "https://api.example/")
  -leader-elect
    	Elect a leader.
  -link-in-status
    	Write the link into the status; a | in a cell
    	is escaped. (default true)
  -watch-namespaces value
    	Comma-separated namespaces to watch.
`

func TestParseAndRender(t *testing.T) {
	flags, err := parseHelp(strings.NewReader(help))
	if err != nil {
		t.Fatal(err)
	}
	got := renderTable(flags)
	for _, row := range []string{
		"| `--api-endpoint` | string | `https://api.example/` | Base URL of the cloud API. |",
		"| `--leader-elect` | bool | `false` | Elect a leader. |",
		"| `--link-in-status` | bool | `true` | Write the link into the status; a \\| in a cell is escaped. |",
		"| `--watch-namespaces` | string |  | Comma-separated namespaces to watch. |",
	} {
		if !strings.Contains(got, row+"\n") {
			t.Errorf("the table lacks the row\n%s\ngot:\n%s", row, got)
		}
	}
	if _, err := parseHelp(strings.NewReader("flag provided but not defined: -x\n")); err == nil {
		t.Error("an input without flags was accepted")
	}
}

func TestReplaceBetweenMarkers(t *testing.T) {
	doc := "# Doc\n" + beginMarker + "\nold\n" + endMarker + "\ntail\n"
	got, err := replaceBetweenMarkers(doc, "new\n")
	if want := "# Doc\n" + beginMarker + "\nnew\n" + endMarker + "\ntail\n"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := replaceBetweenMarkers("# Doc\n", "new\n"); err == nil {
		t.Error("a document without markers was accepted")
	}
}
