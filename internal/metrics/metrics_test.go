package metrics

import (
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

// outcomesOf returns the outcome label values counted for action.
func outcomesOf(t *testing.T, action string) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() { apiRequests.Collect(ch); close(ch) }()
	outcomes := map[string]float64{}
	for m := range ch {
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range out.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["action"] == action {
			outcomes[labels["outcome"]] += out.GetCounter().GetValue()
		}
	}
	return outcomes
}

func TestOutcomeLabelIsBoundedWhateverTheProviderSends(t *testing.T) {
	const action = "TestOutcomeLabelIsBounded"
	observer := APIObserver{}
	rng := rand.New(rand.NewSource(1))
	const calls = 20_000
	for i := range calls {
		code := rng.Intn(1_000_000) - 1000
		if i%10 == 0 {
			code = cloud.RetCodeThrottled
		}
		err := &cloud.APIError{Action: action, RetCode: code}
		observer.ObserveRequest(action, cloud.Outcome(err), time.Millisecond)
	}
	outcomes := outcomesOf(t, action)
	total := 0.0
	var unknown []string
	for outcome, n := range outcomes {
		total += n
		code, err := strconv.Atoi(strings.TrimPrefix(outcome, "retcode_"))
		if outcome != "retcode_other" && (err != nil || !cloud.KnownRetCode(code)) {
			unknown = append(unknown, outcome)
		}
	}
	if len(unknown) > 0 {
		t.Fatalf("%d outcome label values are neither a known RetCode nor retcode_other, e.g. %q", len(unknown), unknown[0])
	}
	// 20,000 random RetCodes: a handful of known ones may turn up, every
	// other one is counted as retcode_other.
	if len(outcomes) > 5 {
		t.Fatalf("%d outcome label values from random RetCodes, want a handful: %v", len(outcomes), outcomes)
	}
	if total != calls || outcomes["retcode_other"] < calls/2 || outcomes["retcode_153"] < calls/10 {
		t.Fatalf("counts %v, want all %d calls, most as retcode_other and a tenth as retcode_153", outcomes, calls)
	}
}

func TestObserveRefreshCountsByResultAndReason(t *testing.T) {
	count := func(result, reason string) float64 {
		var out dto.Metric
		if err := refreshes.WithLabelValues(result, reason).Write(&out); err != nil {
			t.Fatal(err)
		}
		return out.GetCounter().GetValue()
	}
	successes, rejected := count("success", "Refreshed"), count("failure", "CredentialsRejected")
	ObserveRefresh(true, "Refreshed")
	ObserveRefresh(false, "CredentialsRejected")
	ObserveRefresh(false, "CredentialsRejected")
	if got := count("success", "Refreshed") - successes; got != 1 {
		t.Errorf("%v successes counted, want 1", got)
	}
	if got := count("failure", "CredentialsRejected") - rejected; got != 2 {
		t.Errorf("%v failures counted, want 2", got)
	}
}
