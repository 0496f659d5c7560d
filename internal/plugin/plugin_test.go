package plugin

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time {
	t := metav1.NewTime(now.Add(d))
	return &t
}

func ready(status metav1.ConditionStatus, reason string) []metav1.Condition {
	return []metav1.Condition{{Type: uredisv1alpha1.ConditionReady, Status: status, Reason: reason, Message: "the message"}}
}

func export(namespace, name string, status uredisv1alpha1.RedisBackupExportStatus) *uredisv1alpha1.RedisBackupExport {
	return &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID("uid-" + name)},
		Spec:       uredisv1alpha1.RedisBackupExportSpec{BackupID: "b-" + name, Region: "cn-bj2"},
		Status:     status,
	}
}

// linkSecret is the operator's Secret for e, holding link.
func linkSecret(e *uredisv1alpha1.RedisBackupExport, link string, expires time.Time) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: e.TargetSecretName(), Namespace: e.Namespace,
			Labels:      map[string]string{uredisv1alpha1.LabelManagedBy: uredisv1alpha1.ManagedByValue},
			Annotations: map[string]string{uredisv1alpha1.AnnotationExportUID: string(e.UID)},
		},
		Data: map[string][]byte{
			uredisv1alpha1.KeyBackupPath: []byte(link),
			uredisv1alpha1.KeyExpiresAt:  []byte(expires.UTC().Format(time.RFC3339)),
			uredisv1alpha1.KeyBackupID:   []byte(e.Spec.BackupID),
		},
	}
}

func newPlugin(t *testing.T, objects ...client.Object) (*Plugin, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objects...).
		WithStatusSubresource(&uredisv1alpha1.RedisBackupExport{}).Build()
	var out, errOut bytes.Buffer
	return &Plugin{Client: c, Namespace: "team-a", Clock: testclock.NewFakeClock(now), Out: &out, ErrOut: &errOut}, &out, &errOut
}

func TestGetTable(t *testing.T) {
	fresh := export("team-a", "nightly", uredisv1alpha1.RedisBackupExportStatus{
		BackupID: "b-nightly", ExpiresAt: at(45 * time.Minute), LastRefreshTime: at(-15 * time.Minute),
		NextRefreshTime: at(25 * time.Minute), Conditions: ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed),
	})
	failing := export("team-a", "weekly", uredisv1alpha1.RedisBackupExportStatus{
		BackupID: "b-weekly", ExpiresAt: at(90 * time.Second), LastRefreshTime: at(-time.Hour),
		NextRefreshTime: at(-time.Second), FailureCount: 2, LastFailureTime: at(-3 * time.Minute),
		Conditions: ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing),
	})
	expired := export("team-b", "monthly", uredisv1alpha1.RedisBackupExportStatus{
		BackupID: "b-monthly", ExpiresAt: at(-time.Minute), FailureCount: 7, LastFailureTime: at(-10 * time.Second),
		NextRefreshTime: at(4 * time.Minute), Conditions: ready(metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired),
	})
	pending := export("team-a", "new", uredisv1alpha1.RedisBackupExportStatus{})
	p, out, errOut := newPlugin(t, fresh, failing, expired, pending)
	ctx := context.Background()

	if err := p.Get(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	want := `NAME      READY     BACKUP      TIME LEFT   NEXT REFRESH   LAST FAILURE
new       Unknown   <none>      <none>      <none>         <none>
nightly   True      b-nightly   45m         in 25m         <none>
weekly    True      b-weekly    90s         due            RefreshFailing (2x, 3m ago)
`
	if out.String() != want {
		t.Errorf("get:\n%s\nwant:\n%s", out, want)
	}

	out.Reset()
	if err := p.Get(ctx, "", true); err != nil {
		t.Fatal(err)
	}
	want = `NAMESPACE   NAME      READY     BACKUP      TIME LEFT   NEXT REFRESH   LAST FAILURE
team-a      new       Unknown   <none>      <none>      <none>         <none>
team-a      nightly   True      b-nightly   45m         in 25m         <none>
team-a      weekly    True      b-weekly    90s         due            RefreshFailing (2x, 3m ago)
team-b      monthly   False     b-monthly   expired     in 4m          LinkExpired (7x, 10s ago)
`
	if out.String() != want {
		t.Errorf("get -A:\n%s\nwant:\n%s", out, want)
	}

	out.Reset()
	if err := p.Get(ctx, "weekly", false); err != nil || !strings.HasPrefix(out.String(), "NAME ") || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("get weekly: %v\n%s", err, out)
	}
	if err := p.Get(ctx, "weekly", true); err == nil || !strings.Contains(err.Error(), "cannot be retrieved by name across all namespaces") {
		t.Errorf("get NAME -A: %v", err)
	}
	if err := p.Get(ctx, "missing", false); err == nil || err.Error() != `redisbackupexport "missing" not found in namespace team-a` {
		t.Errorf("get missing: %v", err)
	}
	p.Namespace = "empty"
	if err := p.Get(ctx, "", false); err != nil || errOut.String() != "No resources found in empty namespace.\n" {
		t.Errorf("empty namespace: %v %q", err, errOut)
	}
}

func TestClassify(t *testing.T) {
	base := uredisv1alpha1.RedisBackupExportStatus{ExpiresAt: at(time.Hour), LastRefreshTime: at(0)}
	withStatus := func(mutate func(*uredisv1alpha1.RedisBackupExportStatus)) *uredisv1alpha1.RedisBackupExport {
		st := *base.DeepCopy()
		mutate(&st)
		return export("team-a", "x", st)
	}
	before := withStatus(func(*uredisv1alpha1.RedisBackupExportStatus) {})
	for name, tc := range map[string]struct {
		after *uredisv1alpha1.RedisBackupExport
		want  Outcome
	}{
		"new link": {withStatus(func(s *uredisv1alpha1.RedisBackupExportStatus) {
			s.LastRefreshTime, s.ExpiresAt = at(40*time.Second), at(time.Hour+40*time.Second)
		}), Refreshed},
		"new expiry": {withStatus(func(s *uredisv1alpha1.RedisBackupExportStatus) { s.ExpiresAt = at(2 * time.Hour) }), Refreshed},
		"new failure": {withStatus(func(s *uredisv1alpha1.RedisBackupExportStatus) {
			s.LastFailureTime, s.FailureCount = at(time.Minute), 1
		}), Failed},
		"nothing but the ack":  {withStatus(func(s *uredisv1alpha1.RedisBackupExportStatus) { s.LastHandledRefreshRequest = "v" }), Declined},
		"old failure, no more": {withStatus(func(*uredisv1alpha1.RedisBackupExportStatus) {}), Declined},
	} {
		if got := classify(before, tc.after); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", name, got, tc.want)
		}
	}
	// A failure after an earlier one: a new time, or one more failure.
	failedBefore := withStatus(func(s *uredisv1alpha1.RedisBackupExportStatus) {
		s.LastFailureTime, s.FailureCount = at(-time.Minute), 1
	})
	failedAgain := withStatus(func(s *uredisv1alpha1.RedisBackupExportStatus) {
		s.LastFailureTime, s.FailureCount = at(time.Minute), 2
	})
	if got := classify(failedBefore, failedAgain); got != Failed {
		t.Errorf("second failure: %d", got)
	}
	if got := classify(failedBefore, failedBefore); got != Declined {
		t.Errorf("same failure: %d", got)
	}
}

func TestHandled(t *testing.T) {
	long := strings.Repeat("x", 65)
	e := func(annotation, last string) *uredisv1alpha1.RedisBackupExport {
		x := export("team-a", "x", uredisv1alpha1.RedisBackupExportStatus{LastHandledRefreshRequest: last})
		x.Annotations = map[string]string{uredisv1alpha1.AnnotationRefreshRequestedAt: annotation}
		return x
	}
	for _, tc := range []struct {
		export *uredisv1alpha1.RedisBackupExport
		value  string
		want   bool
	}{
		{e("v1", "v1"), "v1", true},
		{e("v1", "v0"), "v1", false},
		{e("v2", "v2"), "v1", true},   // a later request, answered, answers ours
		{e("v2", "v1x"), "v1", false}, // a later request, not answered yet
		{e(long, uredisv1alpha1.HandledRefreshRequest(long)), long, true},
	} {
		if got := handled(tc.export, tc.value); got != tc.want {
			t.Errorf("handled(annotation %.8s, last %.8s, value %.8s) = %v", tc.export.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt], tc.export.Status.LastHandledRefreshRequest, tc.value, got)
		}
	}
}

// validExport is a Ready resource whose Secret holds link, expiring in left,
// from a link that lives lifetime.
func validExport(link string, left, lifetime time.Duration) (*uredisv1alpha1.RedisBackupExport, *corev1.Secret) {
	e := export("team-a", "nightly", uredisv1alpha1.RedisBackupExportStatus{
		BackupID: "b-nightly", ExpiresAt: at(left), LastRefreshTime: at(left - lifetime),
		Conditions: ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed),
	})
	return e, linkSecret(e, link, now.Add(left))
}

func TestValidLink(t *testing.T) {
	ctx := context.Background()
	const link = "https://storage.example/download/b?Expires=1&Signature=secret+sig="

	t.Run("fresh enough", func(t *testing.T) {
		e, s := validExport(link, 40*time.Minute, time.Hour)
		p, _, _ := newPlugin(t, e, s)
		got, err := p.ValidLink(ctx, "nightly", 30*time.Minute, time.Minute)
		if err != nil || got.URL != link || !got.ExpiresAt.Equal(now.Add(40*time.Minute)) {
			t.Fatalf("ValidLink = %+v, %v", got, err)
		}
	})

	t.Run("renamed key, and the status without the link", func(t *testing.T) {
		e, s := validExport(link, 40*time.Minute, time.Hour)
		e.Spec.Target.Keys.BackupPath = "BACKUP_URL"
		s.Data["BACKUP_URL"] = s.Data[uredisv1alpha1.KeyBackupPath]
		delete(s.Data, uredisv1alpha1.KeyBackupPath)
		p, _, _ := newPlugin(t, e, s)
		if got, err := p.ValidLink(ctx, "nightly", time.Minute, time.Minute); err != nil || got.URL != link {
			t.Fatalf("ValidLink = %+v, %v", got, err)
		}
	})

	t.Run("a template without the link key falls back on the status", func(t *testing.T) {
		e, s := validExport(link, 40*time.Minute, time.Hour)
		delete(s.Data, uredisv1alpha1.KeyBackupPath)
		p, _, _ := newPlugin(t, e, s)
		if _, err := p.ValidLink(ctx, "nightly", time.Minute, time.Minute); err == nil || !strings.Contains(err.Error(), "has no key backupPath and status.backupPath is empty") {
			t.Fatalf("without any link: %v", err)
		}
		e.Status.BackupPath = link
		p, _, _ = newPlugin(t, e, s)
		if got, err := p.ValidLink(ctx, "nightly", time.Minute, time.Minute); err != nil || got.URL != link {
			t.Fatalf("from the status: %+v, %v", got, err)
		}
	})

	t.Run("a Secret of someone else's is not read", func(t *testing.T) {
		e, s := validExport(link, 40*time.Minute, time.Hour)
		s.Annotations[uredisv1alpha1.AnnotationExportUID] = "another"
		p, _, _ := newPlugin(t, e, s)
		_, err := p.ValidLink(ctx, "nightly", time.Minute, time.Minute)
		if err == nil || !strings.Contains(err.Error(), "is not the one the operator writes") {
			t.Fatalf("foreign Secret: %v", err)
		}
	})

	t.Run("longer than links live: no request", func(t *testing.T) {
		e, s := validExport(link, 4*time.Minute, 5*time.Minute)
		p, _, _ := newPlugin(t, e, s)
		_, err := p.ValidLink(ctx, "nightly", 5*time.Minute, time.Minute)
		if err == nil || !strings.Contains(err.Error(), "live about 5m (the current one was obtained at 2026-11-30T11:59:00Z and expires at 2026-11-30T12:04:00Z): none can stay valid for --min-validity 5m0s") {
			t.Fatalf("ValidLink: %v", err)
		}
		got := &uredisv1alpha1.RedisBackupExport{}
		if err := p.Client.Get(ctx, client.ObjectKeyFromObject(e), got); err != nil || got.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt] != "" {
			t.Fatalf("a refresh was requested: %v %v", got.Annotations, err)
		}
	})
}

// downloadPlugin is a plugin whose resource's link points at srv.
func downloadPlugin(t *testing.T, srv *httptest.Server, path string) (*Plugin, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	e, s := validExport(srv.URL+path+"?Signature=secret-signature", 50*time.Minute, time.Hour)
	p, out, errOut := newPlugin(t, e, s)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	p.HTTPClient = NewHTTPClient(pool)
	return p, out, errOut
}

// storage serves content, honouring Range unless told otherwise.
type storage struct {
	content []byte
	// startShift answers a Range from this many bytes off the start asked.
	startShift int
	// total overrides the total size in Content-Range.
	total    int
	requests []string
}

func (s *storage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests = append(s.requests, r.Header.Get("Range"))
	from, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.content)))
		_, _ = w.Write(s.content)
		return
	}
	start, _ := strconv.Atoi(strings.TrimSuffix(from, "-"))
	start += s.startShift
	total := len(s.content)
	if s.total != 0 {
		total = s.total
	}
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, total-1, total))
	w.Header().Set("Content-Length", strconv.Itoa(len(s.content)-start))
	w.WriteHeader(http.StatusPartialContent)
	_, _ = w.Write(s.content[start:])
}

func TestDownloadResumeChecks(t *testing.T) {
	ctx := context.Background()
	content := bytes.Repeat([]byte("0123456789"), 1000)
	partial := func(t *testing.T, n int, size int) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "backup.rdb")
		if err := os.WriteFile(file+".partial", content[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file+".partial.json", fmt.Appendf(nil, `{"backupId":"b-nightly","size":%d}`, size), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}

	for name, tc := range map[string]struct {
		storage  *storage
		size     int
		requests []string
		note     string
	}{
		"resumed":                    {&storage{content: content}, len(content), []string{"bytes=4000-"}, "resuming"},
		"another start":              {&storage{content: content, startShift: 10}, len(content), []string{"bytes=4000-", ""}, "answered from byte 4010 instead of 4000: downloading from the start"},
		"another object size":        {&storage{content: content, total: 20000}, len(content), []string{"bytes=4000-", ""}, "the object now has 20000 bytes, the partial download was of 10000: downloading from the start"},
		"a partial of another size":  {&storage{content: content}, 12000, []string{"bytes=4000-", ""}, "the object now has 10000 bytes, the partial download was of 12000"},
		"a partial larger than size": {&storage{content: content}, 3000, []string{""}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(tc.storage)
			defer srv.Close()
			p, _, errOut := downloadPlugin(t, srv, "/b")
			file := partial(t, 4000, tc.size)
			if err := p.Download(ctx, "nightly", file, time.Minute, time.Minute); err != nil {
				t.Fatalf("Download: %v\n%s", err, errOut)
			}
			if got, _ := os.ReadFile(file); !bytes.Equal(got, content) {
				t.Errorf("the file is not the content (%d bytes)", len(got))
			}
			if fmt.Sprint(tc.storage.requests) != fmt.Sprint(tc.requests) {
				t.Errorf("Range headers %q, want %q", tc.storage.requests, tc.requests)
			}
			if !strings.Contains(errOut.String(), tc.note) {
				t.Errorf("notes %q lack %q", errOut, tc.note)
			}
			for _, leftover := range []string{file + ".partial", file + ".partial.json"} {
				if _, err := os.Stat(leftover); err == nil {
					t.Errorf("%s left behind", leftover)
				}
			}
		})
	}
}

func TestDownloadRefusals(t *testing.T) {
	ctx := context.Background()
	content := []byte("REDIS0011 backup")
	mux := http.NewServeMux()
	mux.Handle("/b", &storage{content: content})
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "link expired", http.StatusForbidden) })
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/b?Signature=secret-signature", http.StatusFound)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	for path, want := range map[string]string{
		"/forbidden": "the storage refused the link (HTTP 403): it expired or is not valid",
		"/to-http":   "the storage redirected to a non-https URL: refused",
	} {
		p, out, errOut := downloadPlugin(t, srv, path)
		err := p.Download(ctx, "nightly", filepath.Join(t.TempDir(), "f"), time.Minute, time.Minute)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
		if err != nil && strings.Contains(err.Error()+out.String()+errOut.String(), "secret-signature") {
			t.Errorf("%s: the link was printed: %v", path, err)
		}
	}

	// An http:// link is never fetched: the plain server gets no request.
	var plainRequests atomic.Int32
	plainStorage := &storage{content: content}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainRequests.Add(1)
		plainStorage.ServeHTTP(w, r)
	}))
	defer plain.Close()
	e, s := validExport(plain.URL+"/b?Signature=secret-signature", 50*time.Minute, time.Hour)
	p, _, _ := newPlugin(t, e, s)
	err := p.Download(ctx, "nightly", filepath.Join(t.TempDir(), "f"), time.Minute, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "not an https:// link") {
		t.Errorf("http link: %v", err)
	}
	if n := plainRequests.Load(); n != 0 {
		t.Errorf("the http:// link was fetched: %d requests", n)
	}

	// To stdout.
	p, out, _ := downloadPlugin(t, srv, "/b")
	if err := p.Download(ctx, "nightly", "-", time.Minute, time.Minute); err != nil || out.String() != string(content) {
		t.Errorf("to stdout: %v %q", err, out)
	}
}

func TestContentRange(t *testing.T) {
	for header, want := range map[string]string{
		"bytes 10-99/100": "10 100 <nil>",
		"bytes 0-0/1":     "0 1 <nil>",
		"bytes 10-98/100": `0 0 no usable Content-Range ("bytes 10-98/100")`,
		"bytes 10-99/*":   `0 0 no usable Content-Range ("bytes 10-99/*")`,
		"bytes */100":     `0 0 no usable Content-Range ("bytes */100")`,
		"":                `0 0 no usable Content-Range ("")`,
	} {
		start, total, err := contentRange(header)
		if got := fmt.Sprint(start, total, err); got != want {
			t.Errorf("contentRange(%q) = %s, want %s", header, got, want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	p, _, errOut := newPlugin(t)
	p.Progress = true
	pr := p.newProgress(1024, 4096)
	r := pr.reader(strings.NewReader(strings.Repeat("x", 1024)))
	p.Clock.(*testclock.FakeClock).Step(time.Second)
	if _, err := r.Read(make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	pr.done()
	if want := "\r2.0 KiB / 4.0 KiB (50%)  1.0 KiB/s\x1b[K\r2.0 KiB / 4.0 KiB (50%)  1.0 KiB/s\x1b[K\n"; errOut.String() != want {
		t.Errorf("progress %q, want %q", errOut, want)
	}
	p.Progress = false
	errOut.Reset()
	pr = p.newProgress(0, 10)
	_, _ = pr.reader(strings.NewReader("abc")).Read(make([]byte, 3))
	pr.done()
	if errOut.Len() != 0 {
		t.Errorf("progress shown off a terminal: %q", errOut)
	}
}

// TestDownloadNeverOverwritesTheDefaultFile: without -o the file is named
// after the backup, and an existing one is not replaced.
func TestDownloadNeverOverwritesTheDefaultFile(t *testing.T) {
	srv := httptest.NewTLSServer(&storage{content: []byte("REDIS0011 backup")})
	defer srv.Close()
	t.Chdir(t.TempDir())
	p, _, _ := downloadPlugin(t, srv, "/b")
	if err := p.Download(context.Background(), "nightly", "", time.Minute, time.Minute); err != nil {
		t.Fatalf("first download: %v", err)
	}
	files, _ := filepath.Glob("*.rdb")
	if len(files) != 1 {
		t.Fatalf("downloaded into %v, want one .rdb file", files)
	}
	if err := os.WriteFile(files[0], []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, _ = downloadPlugin(t, srv, "/b")
	err := p.Download(context.Background(), "nightly", "", time.Minute, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second download into the same default file: %v", err)
	}
	if got, _ := os.ReadFile(files[0]); string(got) != "mine" {
		t.Errorf("the existing file was replaced: %q", got)
	}
}
