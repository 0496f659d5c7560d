package metrics

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// The per-resource families, in the order they are written.
var families = []family{
	{
		name: namespace + "_link_expiration_timestamp_seconds",
		help: "When the current link of a RedisBackupExport expires, as a Unix timestamp.",
		samples: func(e *uredisv1alpha1.RedisBackupExport, s sample) {
			if e.Status.ExpiresAt != nil {
				s.emit("", float64(e.Status.ExpiresAt.Unix()))
			}
		},
	},
	{
		name: namespace + "_next_refresh_timestamp_seconds",
		help: "When the next refresh (or retry) of a RedisBackupExport is planned, as a Unix timestamp.",
		samples: func(e *uredisv1alpha1.RedisBackupExport, s sample) {
			if e.Status.NextRefreshTime != nil {
				s.emit("", float64(e.Status.NextRefreshTime.Unix()))
			}
		},
	},
	{
		name: namespace + "_ready_status",
		help: "The Ready condition of a RedisBackupExport: 1 for the condition's current status, 0 for the others.",
		samples: func(e *uredisv1alpha1.RedisBackupExport, s sample) {
			current := "Unknown"
			if ready := meta.FindStatusCondition(e.Status.Conditions, uredisv1alpha1.ConditionReady); ready != nil {
				current = string(ready.Status)
			}
			for _, condition := range []string{"True", "False", "Unknown"} {
				if condition == current {
					s.emit(condition, 1)
				} else {
					s.emit(condition, 0)
				}
			}
		},
	},
	{
		// Stalled is absent unless it is True (the "abnormal-true" style
		// kstatus reads), so one sample says it all.
		name: namespace + "_stalled",
		help: "1 while a RedisBackupExport's Stalled condition is True (progress needs a person: credentials, spec, permissions), 0 otherwise.",
		samples: func(e *uredisv1alpha1.RedisBackupExport, s sample) {
			if meta.IsStatusConditionTrue(e.Status.Conditions, uredisv1alpha1.ConditionStalled) {
				s.emit("", 1)
			} else {
				s.emit("", 0)
			}
		},
	},
	{
		// The alerts leave suspended resources alone: a person chose to
		// stop their refreshes.
		name: namespace + "_suspended",
		help: "1 while a RedisBackupExport is suspended (spec.suspend: no API call, no Secret write), 0 otherwise.",
		samples: func(e *uredisv1alpha1.RedisBackupExport, s sample) {
			if e.Spec.Suspend {
				s.emit("", 1)
			} else {
				s.emit("", 0)
			}
		},
	},
	{
		name: namespace + "_consecutive_failures",
		help: "Consecutive failed refresh attempts of a RedisBackupExport.",
		samples: func(e *uredisv1alpha1.RedisBackupExport, s sample) {
			s.emit("", float64(e.Status.FailureCount))
		},
	},
}

// A family is one gauge with a sample (or a few, told apart by a
// condition label) per resource.
type family struct {
	name, help string
	samples    func(e *uredisv1alpha1.RedisBackupExport, s sample)
}

// sample writes one sample of a family for a resource. A value, not a
// closure: a scrape makes one per resource and family, 60,000 at 10,000
// resources, and a closure would be allocated each time.
type sample struct {
	t      *textWriter
	family string
	e      *uredisv1alpha1.RedisBackupExport
}

func (s sample) emit(condition string, value float64) { s.t.sample(s.family, s.e, condition, value) }

// ResourceSeries serves the per-resource series of the RedisBackupExports
// in one cache. Its Filter goes into the manager's metrics server options;
// the cache is handed over with Use once the manager exists.
type ResourceSeries struct {
	reader atomic.Pointer[client.Reader]
}

// Use makes reader's RedisBackupExports the ones reported.
func (s *ResourceSeries) Use(reader client.Reader) { s.reader.Store(&reader) }

// FilterProvider is the one metricsserver.Options takes.
func (s *ResourceSeries) FilterProvider(*rest.Config, *http.Client) (metricsserver.Filter, error) {
	return s.Filter, nil
}

// Filter wraps the metrics server's /metrics handler: the registry's
// series are asked for in the plain text format, uncompressed, and the
// per-resource series are written after them. Other paths pass through.
func (s *ResourceSeries) Filter(_ logr.Logger, next http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		r = r.Clone(r.Context())
		r.Header.Set("Accept", textFormat)
		r.Header.Del("Accept-Encoding")
		status := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(status, r)
		if status.status != http.StatusOK {
			return
		}
		out := bufio.NewWriterSize(w, 32<<10)
		s.write(r.Context(), out)
		_ = out.Flush() // the client went away; nothing to tell it
	}), nil
}

// textFormat is the Prometheus text exposition format, version 0.0.4, the
// one every scraper accepts and the one the resource series are written in.
const textFormat = "text/plain;version=0.0.4"

// write reads the cache once and writes every family from what it read.
func (s *ResourceSeries) write(ctx context.Context, w *bufio.Writer) {
	reader := s.reader.Load()
	if reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	exports, err := cached(ctx, *reader)
	if err != nil {
		return // the cache is not synced yet; the next scrape will tell
	}
	writeFamilies(w, exports)
}

// writeFamilies writes every family's samples for exports.
func writeFamilies(w *bufio.Writer, exports []*uredisv1alpha1.RedisBackupExport) {
	t := textWriter{w: w}
	for _, f := range families {
		t.header(f)
		for _, e := range exports {
			f.samples(e, sample{t: &t, family: f.name, e: e})
		}
	}
}

// cached returns the resources in reader, read-only. From an informer
// cache they are the cached objects themselves: a List would copy each
// one's struct, 6 MiB at 10,000 resources, on every scrape.
func cached(ctx context.Context, reader client.Reader) ([]*uredisv1alpha1.RedisBackupExport, error) {
	if informers, ok := reader.(cache.Informers); ok {
		informer, err := informers.GetInformer(ctx, &uredisv1alpha1.RedisBackupExport{}, cache.BlockUntilSynced(false))
		if err != nil {
			return nil, err
		}
		if !informer.HasSynced() {
			return nil, errNotSynced
		}
		if store, ok := informer.(interface{ GetStore() toolscache.Store }); ok {
			objects := store.GetStore().List()
			exports := make([]*uredisv1alpha1.RedisBackupExport, 0, len(objects))
			for _, obj := range objects {
				if e, ok := obj.(*uredisv1alpha1.RedisBackupExport); ok {
					exports = append(exports, e)
				}
			}
			return exports, nil
		}
	}
	var list uredisv1alpha1.RedisBackupExportList
	if err := reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	exports := make([]*uredisv1alpha1.RedisBackupExport, len(list.Items))
	for i := range list.Items {
		exports[i] = &list.Items[i]
	}
	return exports, nil
}

var errNotSynced = errors.New("the cache of RedisBackupExports has not synced")

// textWriter writes samples in the text format without allocating per
// sample: a scrape of 10,000 resources writes 80,000 of them. Its writes
// go to a bufio.Writer, which keeps the first error and returns it from
// Flush; they are not checked one by one.
type textWriter struct {
	w   *bufio.Writer
	num []byte
}

func (t *textWriter) header(f family) {
	t.w.WriteString("# HELP ")
	t.w.WriteString(f.name)
	t.w.WriteByte(' ')
	_, _ = helpEscaper.WriteString(t.w, f.help) // an error sticks in t.w
	t.w.WriteString("\n# TYPE ")
	t.w.WriteString(f.name)
	t.w.WriteString(" gauge\n")
}

func (t *textWriter) sample(name string, e *uredisv1alpha1.RedisBackupExport, condition string, value float64) {
	t.w.WriteString(name)
	t.w.WriteByte('{')
	if condition != "" {
		t.label("condition", condition)
		t.w.WriteByte(',')
	}
	t.label("name", e.Name)
	t.w.WriteByte(',')
	t.label("namespace", e.Namespace)
	t.w.WriteString("} ")
	t.num = strconv.AppendFloat(t.num[:0], value, 'g', -1, 64)
	t.w.Write(t.num)
	t.w.WriteByte('\n')
}

func (t *textWriter) label(name, value string) {
	t.w.WriteString(name)
	t.w.WriteString(`="`)
	_, _ = labelEscaper.WriteString(t.w, value) // an error sticks in t.w
	t.w.WriteByte('"')
}

// The text format's escaping: of \, " and newlines in label values, of \
// and newlines in help texts.
var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// statusRecorder remembers the status code the registry's handler sent.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
