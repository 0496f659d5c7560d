package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile is the nearest-rank percentile (p in [0, 100]) of values: the
// smallest value that at least p percent of the values do not exceed. It
// is always one of the values, never an interpolation; 0 for none.
func Percentile(values []time.Duration, p float64) time.Duration {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Median is the middle value, or the mean of the two middle ones; 0 for
// none.
func Median(values []time.Duration) time.Duration {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	mid := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[mid]
	}
	return (sorted[mid-1] + sorted[mid]) / 2
}

// MaxPerSecond is the largest number of times that fall into one
// wall-clock second (buckets [k s, k+1 s) of Unix time): the herd.
func MaxPerSecond(times []time.Time) int {
	counts := map[int64]int{}
	most := 0
	for _, t := range times {
		second := t.Unix()
		counts[second]++
		most = max(most, counts[second])
	}
	return most
}

// CallsPerLifetime is how many calls each resource made per link lifetime
// during a window: calls / resources / (window / lifetime).
func CallsPerLifetime(calls, resources int, window, lifetime time.Duration) float64 {
	if resources == 0 || window <= 0 {
		return 0
	}
	return float64(calls) / float64(resources) / (window.Seconds() / lifetime.Seconds())
}

// SteadyCallsPerLifetime is lifetime divided by the mean time between two
// consecutive calls for the same resource (callsByResource holds each
// resource's call times). Unlike CallsPerLifetime it does not depend on
// where the window's edges fall between refreshes. 0 when no resource was
// called twice.
func SteadyCallsPerLifetime(callsByResource map[string][]time.Time, lifetime time.Duration) float64 {
	var span time.Duration
	intervals := 0
	for _, times := range callsByResource {
		if len(times) < 2 {
			continue
		}
		first, last := slices.MinFunc(times, time.Time.Compare), slices.MaxFunc(times, time.Time.Compare)
		span += last.Sub(first)
		intervals += len(times) - 1
	}
	if intervals == 0 || span <= 0 {
		return 0
	}
	meanInterval := span / time.Duration(intervals)
	return lifetime.Seconds() / meanInterval.Seconds()
}

// ExpiredLinks counts the links (Secrets' expiresAt values, RFC 3339) that
// are expired at now: expiresAt <= now. A value that does not parse counts
// as expired, as a consumer could not trust it either.
func ExpiredLinks(expiresAt []string, now time.Time) int {
	expired := 0
	for _, v := range expiresAt {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil || !t.After(now) {
			expired++
		}
	}
	return expired
}
