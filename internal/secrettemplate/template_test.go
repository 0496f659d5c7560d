package secrettemplate

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

var expiry = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// link is shaped like the simulator's and the real service's links, with
// a signature holding +, / and =.
var fields = Fields{
	BackupPath:      "https://127.0.0.1:8443/download/b-1?UCloudPublicKey=k&Expires=1796040000&Signature=AZp+Uj/Ko=",
	InnerBackupPath: "https://10.0.0.1/inner/b-1?UCloudPublicKey=k&Expires=1796040000&Signature=AZp+Uj/Ko=",
	ExpiresAt:       expiry,
	BackupID:        "b-1",
	Region:          "cn-bj2",
}

func render(t *testing.T, templates map[string]string, f Fields) (map[string][]byte, error) {
	t.Helper()
	set, err := Parse(templates)
	if err != nil {
		return nil, err
	}
	return set.Render(f)
}

func TestRenderFields(t *testing.T) {
	got, err := render(t, map[string]string{
		"curl.conf":   "url = {{ .backupPath | quote }}\noutput = \"{{ .backupId }}.rdb\"\n",
		"expires":     "{{ .expiresAt }} {{ .expiresAtUnix }} {{ date \"2006-01-02\" .expiresAtUnix }} {{ (toDate \"2006-01-02T15:04:05Z07:00\" .expiresAt).Unix }}",
		"region":      "{{ .region | upper }}",
		"inner":       "{{ .innerBackupPath | default \"none\" }}",
		"query":       `{{ (urlParse .backupPath).query }}`,
		"signature":   `{{ regexReplaceAll ".*Signature=" .backupPath "" }}`,
		"json":        `{{ dict "url" .backupPath "id" .backupId | toJson }}`,
		"with-params": `{{ .backupPath }}&response-content-disposition={{ printf "attachment; filename=%s.rdb" .backupId | urlquery }}`,
	}, fields)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"curl.conf":   "url = \"" + fields.BackupPath + "\"\noutput = \"b-1.rdb\"\n",
		"expires":     "2026-11-30T12:00:00Z 1796040000 2026-11-30 1796040000",
		"region":      "CN-BJ2",
		"inner":       fields.InnerBackupPath,
		"query":       "UCloudPublicKey=k&Expires=1796040000&Signature=AZp+Uj/Ko=",
		"signature":   "AZp+Uj/Ko=",
		"json":        `{"id":"b-1","url":"https://127.0.0.1:8443/download/b-1?UCloudPublicKey=k\u0026Expires=1796040000\u0026Signature=AZp+Uj/Ko="}`,
		"with-params": fields.BackupPath + "&response-content-disposition=attachment%3B+filename%3Db-1.rdb",
	}
	for key, value := range want {
		if string(got[key]) != value {
			t.Errorf("%s = %q, want %q", key, got[key], value)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rendered %d keys, want %d", len(got), len(want))
	}
	again, _ := render(t, map[string]string{"k": "{{ .backupPath | sha256sum }}{{ .expiresAtUnix | date \"15:04\" }}"}, fields)
	twice, _ := render(t, map[string]string{"k": "{{ .backupPath | sha256sum }}{{ .expiresAtUnix | date \"15:04\" }}"}, fields)
	if string(again["k"]) != string(twice["k"]) {
		t.Errorf("the same link must render the same Secret")
	}
}

// TestFunctionsThatReachOutAreAbsent: nothing that reads the environment,
// the network, files, the clock or randomness can be called; such a
// template does not parse.
func TestFunctionsThatReachOutAreAbsent(t *testing.T) {
	for _, call := range []string{
		`env "HOME"`, `expandenv "$HOME"`, `getHostByName "localhost"`,
		`now`, `ago .expiresAt`, `randAlphaNum 8`, `randBytes 8`, `uuidv4`, `shuffle "ab"`,
		`genCA "x" 1`, `genPrivateKey "rsa"`, `bcrypt "x"`, `htpasswd "u" "p"`, `derivePassword 1 "long" "p" "u" "s"`,
		`encryptAES "k" "x"`, `until 5`, `untilStep 0 5 1`, `seq 5`, `durationRound "1h"`, `htmlDate 0`,
		`set (dict) "a" 1`, `mergeOverwrite (dict) (dict)`, `toPrettyJson 1`, `wrapWith 1 "x" "y"`, `chunk 1 (list)`,
	} {
		name := strings.Fields(call)[0]
		_, err := Parse(map[string]string{"k": "{{ " + call + " }}"})
		var e *Error
		if !errors.As(err, &e) || e.Key != "k" || !strings.Contains(err.Error(), `function "`+name+`" not defined`) {
			t.Errorf("%s: want a parse error naming the key and the function, got %v", name, err)
		}
		if _, found := funcs[name]; found {
			t.Errorf("%s is in the function map", name)
		}
	}
}

func TestUnboundedActionsAreRefused(t *testing.T) {
	for name, text := range map[string]string{
		"range over a number": "{{ range 1000000000000 }}{{ end }}",
		"range over a list":   `{{ range splitList "&" .backupPath }}{{ . }}{{ end }}`,
		"define":              `{{ define "x" }}{{ end }}`,
		"block":               `{{ block "x" . }}{{ end }}`,
		"template in an if":   `{{ if .backupPath }}{{ template "k" . }}{{ end }}`,
		"range in a with":     `{{ with .backupPath }}{{ else }}{{ range list 1 }}{{ end }}{{ end }}`,
	} {
		if _, err := Parse(map[string]string{"k": text}); err == nil || !strings.Contains(err.Error(), `key "k" may not use`) {
			t.Errorf("%s: want a refusal, got %v", name, err)
		}
	}
	if _, err := Parse(map[string]string{"k": `{{ if .backupPath }}{{ with .region }}{{ . }}{{ end }}{{ else }}none{{ end }}`}); err != nil {
		t.Errorf("if and with are fine: %v", err)
	}
}

// TestRenderFailuresNeverQuoteTheLink: a failure names the key and where
// in its template, but the underlying error (which may quote the link) is
// only in WithCause.
func TestRenderFailuresNeverQuoteTheLink(t *testing.T) {
	for name, tc := range map[string]struct {
		text, reason string
	}{
		"a field of another name":        {"{{ .backupURL }}", `fails to render at line 1, column 3`},
		"index out of range on the link": {"\n{{ index (splitList \"#\" .backupPath) 1 }}", `fails to render at line 2, column 3`},
		"fail quoting the link":          {`{{ fail .backupPath }}`, `fails to render at line 1, column 3`},
		"urlParse of a bad link":         {`{{ urlParse (print ":" .backupPath) }}`, `fails to render`},
		"repeat, negative":               {`{{ repeat -1 .backupPath }}`, `fails to render`},
	} {
		_, err := render(t, map[string]string{"k": tc.text}, fields)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: want an *Error, got %v", name, err)
		}
		if !strings.Contains(err.Error(), `key "k" `+tc.reason) {
			t.Errorf("%s: %q does not say %q", name, err, tc.reason)
		}
		for _, part := range []string{fields.BackupPath, "Signature", "AZp"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: %q quotes %q", name, err, part)
			}
		}
		if e.WithCause() == err.Error() {
			t.Errorf("%s: WithCause adds the cause", name)
		}
	}
}

func TestRenderingIsBounded(t *testing.T) {
	for name, text := range map[string]string{
		"repeat":                 `{{ repeat 70000 "x" }}`,
		"indent":                 `{{ indent 100000 "x" }}`,
		"nindent of many lines":  `{{ nindent 1000 (repeat 100 "\n") }}`,
		"replace with empty old": `{{ replace "" (repeat 1000 "y") (repeat 1000 "x") }}`,
		"regexReplaceAll":        `{{ regexReplaceAll "" (repeat 1000 "x") (repeat 1000 "y") }}`,
		"regexReplaceAll $":      `{{ regexReplaceAll "x" (repeat 1000 "x") "${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}${0}" }}`,
		"join":                   `{{ join (repeat 60000 "s") (splitList "" (repeat 1000 "x")) }}`,
		"printf width":           `{{ printf "%099999999d" 1 }}`,
		"printf star":            `{{ printf "%*d" 100000000 1 }}`,
		"printf precision":       `{{ printf "%.99999999f" 1.0 }}`,
		"b64enc again and again": `{{ repeat 60000 "x" | b64enc | b64enc | b64enc }}`,
		"html escaping":          `{{ repeat 30000 "&" | html }}`,
		"one key's output":       `{{ $x := repeat 60000 "x" }}{{ $x }}{{ $x }}`,
		"an argument too large":  `{{ $x := repeat 60000 "x" }}{{ cat $x $x }}`,
	} {
		// What the rendering allocates says whether a limit stopped it
		// before the work, whatever the machine's load: each case takes
		// under 1 MiB, while join checked only on its result allocates
		// 57 MiB (in well under a second). The clock only catches a
		// rendering that never ends.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := render(t, map[string]string{"k": text}, fields)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: rendered", name)
		} else if !strings.Contains(err.Error(), "KiB") {
			t.Errorf("%s: %v does not say which limit", name, err)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8<<20 {
			t.Errorf("%s: allocated %d MiB", name, allocated>>20)
		}
		if took > 10*time.Second {
			t.Errorf("%s: took %v", name, took)
		}
	}
	many := map[string]string{}
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		many[key] = `{{ repeat 60000 "x" }}`
	}
	if _, err := render(t, many, fields); err == nil || !strings.Contains(err.Error(), "512 KiB in all") {
		t.Errorf("nine keys of 60,000 bytes: %v", err)
	}
	if _, err := render(t, map[string]string{"k": `{{ printf "%5d|%-8s|%.2f|%%|%[1]d" 1 "x" 1.5 }}`}, fields); err != nil {
		t.Errorf("ordinary widths are fine: %v", err)
	}
}

func TestDateNeedsATime(t *testing.T) {
	_, err := render(t, map[string]string{"k": `{{ date "2006" .expiresAt }}`}, fields)
	if err == nil {
		t.Fatal("date of a string would format the current time")
	}
	var e *Error
	errors.As(err, &e)
	if !strings.Contains(e.WithCause(), "needs a time or Unix seconds") {
		t.Errorf("%s", e.WithCause())
	}
}

// TestTimesDoNotDependOnTheOperatorsZone: toDate reads a time without an
// offset as UTC whatever TZ the operator runs with, and the zone "Local"
// is refused.
func TestTimesDoNotDependOnTheOperatorsZone(t *testing.T) {
	saved := time.Local
	t.Cleanup(func() { time.Local = saved })
	time.Local = time.FixedZone("operator", 8*3600)
	got, err := render(t, map[string]string{"k": `{{ toDate "2006-01-02 15:04" "2026-11-30 10:00" | unixEpoch }}`}, fields)
	if err != nil || string(got["k"]) != "1796032800" {
		t.Errorf("toDate in UTC: %q, %v; want 1796032800", got["k"], err)
	}
	if _, err := render(t, map[string]string{"k": `{{ dateInZone "15:04" .expiresAtUnix "Local" }}`}, fields); err == nil {
		t.Error(`dateInZone with "Local" was accepted`)
	}
}

func TestPlaceholderLooksLikeALink(t *testing.T) {
	p := Placeholder("b-1", "cn-bj2", expiry)
	got, err := render(t, map[string]string{"k": `{{ (urlParse .backupPath).scheme }} {{ index (splitList "Signature=" .backupPath) 1 }} {{ .region }}`}, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got["k"]), "https ") || !strings.HasSuffix(string(got["k"]), " cn-bj2") {
		t.Errorf("%q", got["k"])
	}
}
