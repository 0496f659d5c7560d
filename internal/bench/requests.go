package bench

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// RequestCount is how many requests of one verb on one resource the API
// server served.
type RequestCount struct {
	Verb, Resource string
	Count          int
}

// apiServerRequests reads the API server's apiserver_request_total, summed
// by verb and resource (with its subresource, as "redisbackupexports/status").
func (h *Harness) apiServerRequests(ctx context.Context) (map[[2]string]float64, error) {
	httpClient, err := rest.HTTPClientFor(h.restCfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(h.restCfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the API server's /metrics answered %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	counts := map[[2]string]float64{}
	family := families["apiserver_request_total"]
	if family == nil {
		return nil, fmt.Errorf("the API server reports no apiserver_request_total")
	}
	for _, m := range family.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		resource := labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			resource += "/" + sub
		}
		if resource == "" || strings.HasPrefix(resource, "/") {
			continue // paths other than resources, such as /metrics itself
		}
		counts[[2]string{labels["verb"], resource}] += m.GetCounter().GetValue()
	}
	return counts, nil
}

// requestsBetween lists what changed between two readings, most first.
func requestsBetween(before, after map[[2]string]float64) []RequestCount {
	var out []RequestCount
	for key, value := range after {
		if n := int(value - before[key]); n > 0 {
			out = append(out, RequestCount{Verb: key[0], Resource: key[1], Count: n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Verb+out[i].Resource < out[j].Verb+out[j].Resource
	})
	return out
}
