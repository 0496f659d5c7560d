// Package secrettemplate renders the data of a target Secret from the Go
// templates of spec.target.template. It is pure: no clock, no environment,
// no files, no network. Templates get a fixed set of fields and a subset of
// the sprig function library, and rendering is bounded in time and memory,
// because anyone who may create a RedisBackupExport writes them and they run
// inside the operator:
//
//   - only functions that compute from their arguments: none that read the
//     environment (env, expandenv), the network (getHostByName) or files,
//     and none that are random or read the clock (randAlpha, uuidv4, now,
//     genCA...), so that a link always renders to the same Secret;
//   - no range, define, template or block: the work a template does is then
//     bounded by its size (16 KiB);
//   - every function's string arguments and result are limited to
//     maxValue, and the functions whose output can outgrow their input many
//     times (repeat, indent, replace, join, printf widths...) check the size
//     before they build it;
//   - each key's output is limited to maxKeyOutput, the whole to
//     maxTotalOutput.
package secrettemplate

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Limits of a rendering.
const (
	// maxValue bounds each string (or list, counted by its elements' sizes)
	// a function takes or returns.
	maxValue = 64 << 10
	// maxKeyOutput bounds the value rendered for one key.
	maxKeyOutput = 64 << 10
	// maxTotalOutput bounds all keys together (a Secret holds at most
	// 1 MiB).
	maxTotalOutput = 512 << 10
)

// Fields is what a template can read: the link and what it is for.
type Fields struct {
	BackupPath      string
	InnerBackupPath string
	ExpiresAt       time.Time
	BackupID        string
	Region          string
}

// FieldNames are the names templates read the fields by.
var FieldNames = []string{"backupPath", "innerBackupPath", "expiresAt", "expiresAtUnix", "backupId", "region"}

func (f Fields) data() map[string]any {
	return map[string]any{
		"backupPath":      f.BackupPath,
		"innerBackupPath": f.InnerBackupPath,
		"expiresAt":       f.ExpiresAt.UTC().Format(time.RFC3339),
		"expiresAtUnix":   f.ExpiresAt.Unix(),
		"backupId":        f.BackupID,
		"region":          f.Region,
	}
}

// Placeholder returns fields shaped like a real link's (an https:// link to
// the backup with an expiry and a signature in its query), for rendering a
// template before any link exists.
func Placeholder(backupID, region string, expiresAt time.Time) Fields {
	if backupID == "" {
		backupID = "backup-id"
	}
	query := fmt.Sprintf("?UCloudPublicKey=placeholder&Expires=%d&Signature=placeholder%%2Bsignature%%3D", expiresAt.Unix())
	return Fields{
		BackupPath:      "https://backup.placeholder.invalid/" + backupID + query,
		InnerBackupPath: "https://backup.internal.placeholder.invalid/" + backupID + query,
		ExpiresAt:       expiresAt,
		BackupID:        backupID,
		Region:          region,
	}
}

// Set is the parsed templates of a Secret, by key.
type Set struct {
	templates map[string]*template.Template
}

// Error is a template that cannot be parsed or rendered. Its text names the
// key and never holds a rendered value.
type Error struct {
	Key string
	// Reason says what went wrong, without any value a template computed.
	Reason string
	// cause is the error text/template or a function gave; it may quote
	// the values rendered.
	cause error
}

func (e *Error) Error() string {
	return fmt.Sprintf("the template of key %q %s", e.Key, e.Reason)
}

// WithCause is Error with the underlying error's text, which may quote the
// fields rendered: only for a rendering of placeholder fields.
func (e *Error) WithCause() string {
	if e.cause == nil {
		return e.Error()
	}
	return e.Error() + ": " + e.cause.Error()
}

// Parse parses every template; the first error (by key) is returned.
func Parse(data map[string]string) (*Set, error) {
	set := &Set{templates: make(map[string]*template.Template, len(data))}
	for _, key := range slices.Sorted(maps.Keys(data)) {
		t, err := template.New(key).Option("missingkey=error").Funcs(funcs).Parse(data[key])
		if err != nil {
			// Parse errors quote the template, which is the user's own
			// spec, never a rendered value.
			return nil, &Error{Key: key, Reason: "does not parse: " + strings.TrimPrefix(err.Error(), "template: ")}
		}
		if err := refuseUnbounded(t); err != nil {
			return nil, &Error{Key: key, Reason: err.Error()}
		}
		set.templates[key] = t
	}
	return set, nil
}

// refuseUnbounded refuses the actions that let a template do work out of
// proportion to its size: range (over a number, Go templates loop that many
// times), and define, template and block (recursion).
func refuseUnbounded(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errors.New("may not use define or block: a Secret's template is one template")
	}
	var walk func(parse.Node) error
	walk = func(node parse.Node) error {
		switch n := node.(type) {
		case nil:
			return nil
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, child := range n.Nodes {
				if err := walk(child); err != nil {
					return err
				}
			}
		case *parse.RangeNode:
			return fmt.Errorf("may not use range (line %d): a Secret's template renders a fixed shape", n.Line)
		case *parse.TemplateNode:
			return fmt.Errorf("may not use template (line %d): a Secret's template is one template", n.Line)
		case *parse.ActionNode:
			return walk(n.Pipe)
		case *parse.IfNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.WithNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.PipeNode:
			if n == nil {
				return nil
			}
			for _, cmd := range n.Cmds {
				if err := walk(cmd); err != nil {
					return err
				}
			}
		case *parse.CommandNode:
			for _, arg := range n.Args {
				if err := walk(arg); err != nil {
					return err
				}
			}
		case *parse.ChainNode:
			return walk(n.Node)
		}
		return nil
	}
	return walk(t.Root)
}

func walkBranch(walk func(parse.Node) error, b *parse.BranchNode) error {
	for _, node := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if node == nil || (isNilList(node)) {
			continue
		}
		if err := walk(node); err != nil {
			return err
		}
	}
	return nil
}

func isNilList(node parse.Node) bool {
	list, ok := node.(*parse.ListNode)
	return ok && list == nil
}

// Render renders every template with f. A failure is an *Error naming the
// key and, for a failure while executing, the template's line and column;
// the text of the underlying error is kept out of Error() (see WithCause).
func (s *Set) Render(f Fields) (map[string][]byte, error) {
	data := f.data()
	out := make(map[string][]byte, len(s.templates))
	total := 0
	for _, key := range slices.Sorted(maps.Keys(s.templates)) {
		w := &limitedBuffer{limit: min(maxKeyOutput, maxTotalOutput-total)}
		if err := s.templates[key].Execute(w, data); err != nil {
			if w.exceeded {
				return nil, &Error{Key: key, Reason: fmt.Sprintf("renders more than %s (%d KiB for one key, %d KiB in all)", sizeText(w.limit), maxKeyOutput>>10, maxTotalOutput>>10)}
			}
			if errors.Is(err, errTooLarge) {
				// Says nothing of the values but their size.
				return nil, &Error{Key: key, Reason: "fails to render" + location(err) + ": " + errTooLarge.Error() + ", the limit of every function's arguments and result"}
			}
			return nil, &Error{Key: key, Reason: "fails to render" + location(err), cause: err}
		}
		total += len(w.buf)
		out[key] = w.buf
	}
	return out, nil
}

func sizeText(n int) string {
	return strconv.Itoa(n>>10) + " KiB"
}

// execLocation matches the start of text/template's execution errors:
// "template: KEY:LINE:COL: executing ...". A key has no colon.
var execLocation = regexp.MustCompile(`^template: [^:]*:(\d+):(\d+): `)

// location is " at line L, column C" when err says where it happened.
func location(err error) string {
	if m := execLocation.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Sprintf(" at line %s, column %s", m[1], m[2])
	}
	return ""
}

// limitedBuffer collects output and fails a write past its limit, which
// stops the template at once.
type limitedBuffer struct {
	buf      []byte
	limit    int
	exceeded bool
}

var errOutputLimit = errors.New("output limit reached")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > b.limit {
		b.exceeded = true
		return 0, errOutputLimit
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}
