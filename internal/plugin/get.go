package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

const none = "<none>"

// Get prints a table of one RedisBackupExport (name set) or of all of them
// in the namespace, or in every namespace.
func (p *Plugin) Get(ctx context.Context, name string, allNamespaces bool) error {
	var items []uredisv1alpha1.RedisBackupExport
	switch {
	case name != "" && allNamespaces:
		return errors.New("a resource cannot be retrieved by name across all namespaces")
	case name != "":
		export, err := p.getExport(ctx, name)
		if err != nil {
			return err
		}
		items = append(items, *export)
	default:
		list := &uredisv1alpha1.RedisBackupExportList{}
		var opts []client.ListOption
		if !allNamespaces {
			opts = append(opts, client.InNamespace(p.Namespace))
		}
		if err := p.Client.List(ctx, list, opts...); err != nil {
			return fmt.Errorf("listing RedisBackupExports: %w", err)
		}
		items = list.Items
	}
	if len(items) == 0 {
		if allNamespaces {
			_, err := fmt.Fprintln(p.ErrOut, "No resources found")
			return err
		}
		_, err := fmt.Fprintf(p.ErrOut, "No resources found in %s namespace.\n", p.Namespace)
		return err
	}
	slices.SortFunc(items, func(a, b uredisv1alpha1.RedisBackupExport) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	w := printers.GetNewTabWriter(p.Out)
	header := []string{"NAME", "READY", "BACKUP", "TIME LEFT", "NEXT REFRESH", "LAST FAILURE"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	_, _ = fmt.Fprintln(w, strings.Join(header, "\t")) // a buffer: Flush reports errors
	now := p.Clock.Now()
	for i := range items {
		row := Row(&items[i], now)
		if allNamespaces {
			row = append([]string{items[i].Namespace}, row...)
		}
		_, _ = fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}

// Row is the table row of a RedisBackupExport at now, without the
// namespace: NAME, READY, BACKUP, TIME LEFT, NEXT REFRESH, LAST FAILURE.
func Row(export *uredisv1alpha1.RedisBackupExport, now time.Time) []string {
	st := export.Status
	return []string{
		export.Name,
		readyColumn(export),
		orNone(st.BackupID),
		timeLeft(st.ExpiresAt, now),
		nextRefresh(st.NextRefreshTime, now),
		lastFailure(export, now),
	}
}

func readyColumn(export *uredisv1alpha1.RedisBackupExport) string {
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if ready == nil {
		return "Unknown"
	}
	return string(ready.Status)
}

// timeLeft is how long the link stays valid: "expired" once past.
func timeLeft(expiresAt *metav1.Time, now time.Time) string {
	if expiresAt == nil {
		return none
	}
	left := expiresAt.Sub(now)
	if left <= 0 {
		return "expired"
	}
	return duration.HumanDuration(left)
}

func nextRefresh(next *metav1.Time, now time.Time) string {
	if next == nil {
		return none
	}
	wait := next.Sub(now)
	if wait <= 0 {
		return "due"
	}
	return "in " + duration.HumanDuration(wait)
}

// lastFailure names the reason of the last failed attempt, how many failed
// in a row and when the last did; <none> when the last attempt succeeded.
// While the link stays valid the Ready condition is True with reason
// RefreshFailing (its message has the cause); once not, the reason is the
// failure's own.
func lastFailure(export *uredisv1alpha1.RedisBackupExport, now time.Time) string {
	st := export.Status
	if st.LastFailureTime == nil {
		return none
	}
	reason := "Failed"
	if ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady); ready != nil && ready.Reason != uredisv1alpha1.ReasonRefreshed {
		reason = ready.Reason
	}
	return fmt.Sprintf("%s (%dx, %s ago)", reason, max(st.FailureCount, 1), duration.HumanDuration(max(now.Sub(st.LastFailureTime.Time), 0)))
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}
