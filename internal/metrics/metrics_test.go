package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

func TestObserveRefreshCountsByResultAndReason(t *testing.T) {
	count := func(result, reason string) float64 {
		var out dto.Metric
		if err := refreshes.WithLabelValues(result, reason).Write(&out); err != nil {
			t.Fatal(err)
		}
		return out.GetCounter().GetValue()
	}
	successes, rejected := count("success", uredisv1alpha1.ReasonRefreshed), count("failure", uredisv1alpha1.ReasonCredentialsRejected)
	ObserveRefresh(true, uredisv1alpha1.ReasonRefreshed)
	ObserveRefresh(false, uredisv1alpha1.ReasonCredentialsRejected)
	ObserveRefresh(false, uredisv1alpha1.ReasonCredentialsRejected)
	if got := count("success", uredisv1alpha1.ReasonRefreshed) - successes; got != 1 {
		t.Errorf("%v successes counted, want 1", got)
	}
	if got := count("failure", uredisv1alpha1.ReasonCredentialsRejected) - rejected; got != 2 {
		t.Errorf("%v failures counted, want 2", got)
	}
}
