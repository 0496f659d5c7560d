// Package metrics defines the operator's Prometheus metrics. API request
// metrics are counted as requests happen; per-resource metrics are produced
// at scrape time from the informer cache, so a deleted resource leaves no
// stale series behind (cert-manager does the same for certificates).
package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

const namespace = "uredis_backup_export"

var (
	apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "api_requests_total",
		Help:      "Cloud API requests by action and outcome (success, retcode_<n>, http_4xx, http_429, http_5xx, transport_error, invalid_response).",
	}, []string{"action", "outcome"})

	apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "api_request_duration_seconds",
		Help:      "Latency of cloud API requests, by action.",
		Buckets:   []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"action"})

	expiryDesc = prometheus.NewDesc(namespace+"_link_expiration_timestamp_seconds",
		"When the current link of a RedisBackupExport expires, as a Unix timestamp.", []string{"namespace", "name"}, nil)
	nextRefreshDesc = prometheus.NewDesc(namespace+"_next_refresh_timestamp_seconds",
		"When the next refresh (or retry) of a RedisBackupExport is planned, as a Unix timestamp.", []string{"namespace", "name"}, nil)
	readyDesc = prometheus.NewDesc(namespace+"_ready_status",
		"The Ready condition of a RedisBackupExport: 1 for the condition's current status, 0 for the others.", []string{"namespace", "name", "condition"}, nil)
	failuresDesc = prometheus.NewDesc(namespace+"_consecutive_failures",
		"Consecutive failed refresh attempts of a RedisBackupExport.", []string{"namespace", "name"}, nil)
)

// APIObserver records cloud API requests; it implements
// cloud.RequestObserver.
type APIObserver struct{}

// ObserveRequest counts one request.
func (APIObserver) ObserveRequest(action, outcome string, d time.Duration) {
	apiRequests.WithLabelValues(action, outcome).Inc()
	apiDuration.WithLabelValues(action).Observe(d.Seconds())
}

// exports is the scrape-time collector. It reads from every registered
// cache: a process normally runs one manager, tests run several.
type exports struct {
	mu      sync.Mutex
	readers map[client.Reader]struct{}
}

var (
	registerOnce sync.Once
	collector    = &exports{readers: map[client.Reader]struct{}{}}
)

// Register adds the metrics to reg (once per process) and makes reader's
// RedisBackupExports part of the per-resource metrics until the returned
// function is called.
func Register(reg prometheus.Registerer, reader client.Reader) (unregister func()) {
	registerOnce.Do(func() {
		reg.MustRegister(apiRequests, apiDuration, collector)
	})
	collector.mu.Lock()
	collector.readers[reader] = struct{}{}
	collector.mu.Unlock()
	return func() {
		collector.mu.Lock()
		delete(collector.readers, reader)
		collector.mu.Unlock()
	}
}

func (e *exports) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{expiryDesc, nextRefreshDesc, readyDesc, failuresDesc} {
		ch <- d
	}
}

func (e *exports) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	readers := make([]client.Reader, 0, len(e.readers))
	for r := range e.readers {
		readers = append(readers, r)
	}
	e.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, reader := range readers {
		var list uredisv1alpha1.RedisBackupExportList
		// Read-only use: no deep copy of every cached resource per scrape.
		if err := reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			continue // the cache is not synced yet; the next scrape will tell
		}
		for i := range list.Items {
			collectExport(ch, &list.Items[i])
		}
	}
}

func collectExport(ch chan<- prometheus.Metric, export *uredisv1alpha1.RedisBackupExport) {
	ns, name := export.Namespace, export.Name
	st := export.Status
	if st.ExpiresAt != nil {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(st.ExpiresAt.Unix()), ns, name)
	}
	if st.NextRefreshTime != nil {
		ch <- prometheus.MustNewConstMetric(nextRefreshDesc, prometheus.GaugeValue, float64(st.NextRefreshTime.Unix()), ns, name)
	}
	ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.GaugeValue, float64(st.FailureCount), ns, name)
	current := "Unknown"
	if ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady); ready != nil {
		current = string(ready.Status)
	}
	for _, condition := range []string{"True", "False", "Unknown"} {
		value := 0.0
		if condition == current {
			value = 1
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, value, ns, name, condition)
	}
}
