package controllers

import (
	"testing"
	"time"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

func TestNewestBackup(t *testing.T) {
	at := func(hours int) time.Time { return now.Add(time.Duration(hours) * time.Hour) }
	backups := []cloud.Backup{
		{ID: "auto-old", Type: "Auto", State: "Success", GroupID: "g", Time: at(-48)},
		{ID: "manual-newest-failed", Type: "Manual", State: "Error", GroupID: "g", Time: at(0)},
		{ID: "auto-running", Type: "Auto", State: "Backuping", GroupID: "g", Time: at(-1)},
		{ID: "manual-ok", Type: "Manual", State: "Success", GroupID: "g", Time: at(-5)},
		{ID: "auto-ok", Type: "Auto", State: "Success", GroupID: "g", Time: at(-24)},
		{ID: "other-instance", Type: "Auto", State: "Success", GroupID: "h", Time: at(-2)},
		{ID: "expired", Type: "Auto", State: "Expired", GroupID: "g", Time: at(-3)},
	}
	tests := []struct {
		backupType uredisv1alpha1.BackupType
		want       string
	}{
		{"", "manual-ok"},
		{uredisv1alpha1.BackupTypeAny, "manual-ok"},
		{uredisv1alpha1.BackupTypeAuto, "auto-ok"},
		{uredisv1alpha1.BackupTypeManual, "manual-ok"},
	}
	for _, tt := range tests {
		got, ok := newestBackup(backups, uredisv1alpha1.LatestBackup{GroupID: "g", BackupType: tt.backupType})
		if !ok || got.ID != tt.want {
			t.Errorf("type %q: got %q (found %v), want %q", tt.backupType, got.ID, ok, tt.want)
		}
	}
	if _, ok := newestBackup(backups[1:3], uredisv1alpha1.LatestBackup{GroupID: "g"}); ok {
		t.Error("failed and running backups must never be chosen")
	}
	tie := []cloud.Backup{{ID: "a", State: "Success", Time: now}, {ID: "b", State: "Success", Time: now}}
	if got, _ := newestBackup(tie, uredisv1alpha1.LatestBackup{GroupID: "g"}); got.ID != "b" {
		t.Errorf("equal times must be broken stably by ID, got %q", got.ID)
	}
}
