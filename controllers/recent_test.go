package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

func TestRecentStatuses(t *testing.T) {
	clock := now
	recent := newExportStatuses(30*time.Second, func() time.Time { return clock })
	written := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{UID: "u", ResourceVersion: "2"}}
	written.Status.BackupPath = "https://new.example.com/"
	recent.remember(written)

	stale := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{UID: "u", ResourceVersion: "1"}}
	recent.freshest(stale)
	if stale.Status.BackupPath != "https://new.example.com/" {
		t.Fatal("a stale cached status must be replaced by the one just written")
	}
	caughtUp := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{UID: "u", ResourceVersion: "2"}}
	recent.freshest(caughtUp)
	if recent.written.Len() != 0 {
		t.Fatal("once the cache has caught up the entry goes")
	}

	recent.remember(written)
	clock = clock.Add(31 * time.Second)
	old := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{UID: "u", ResourceVersion: "1"}}
	recent.freshest(old)
	if old.Status.BackupPath != "" {
		t.Fatal("an expired entry must not be used")
	}
}
