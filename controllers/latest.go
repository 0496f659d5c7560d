package controllers

import (
	"context"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

// backupStateSuccess is the listing state of a complete, usable backup.
const backupStateSuccess = "Success"

// chosenBackup is the backup a refresh exports.
type chosenBackup struct {
	id   string
	zone string
}

// chooseBackup returns the backup to export: spec.backupId, or the newest
// successful backup that spec.latest selects, looked up anew every time.
func (f linkFetcher) chooseBackup(ctx context.Context, spec uredisv1alpha1.BackupSelection, creds cloud.Credentials) (chosenBackup, error) {
	if spec.Latest == nil {
		return chosenBackup{id: spec.BackupID, zone: spec.Zone}, nil
	}
	backups, err := f.cloud.ListBackups(ctx, creds, cloud.ListBackupsRequest{
		Region: spec.Region, Zone: spec.Zone, ProjectID: spec.ProjectID, GroupID: spec.Latest.GroupID,
	})
	if err != nil {
		return chosenBackup{}, err
	}
	newest, ok := newestBackup(backups, *spec.Latest)
	if !ok {
		return chosenBackup{}, newNoBackupError(spec.Latest.GroupID, backupTypeOrAny(spec.Latest.BackupType))
	}
	zone := spec.Zone
	if zone == "" {
		zone = newest.Zone
	}
	return chosenBackup{id: newest.ID, zone: zone}, nil
}

// newestBackup picks the newest successful backup of the selected instance
// and type. The listing's order is not relied upon; equal times are broken
// by ID so that the choice is stable.
func newestBackup(backups []cloud.Backup, latest uredisv1alpha1.LatestBackup) (cloud.Backup, bool) {
	var best cloud.Backup
	found := false
	wantType := backupTypeOrAny(latest.BackupType)
	for _, b := range backups {
		if b.State != backupStateSuccess || (b.GroupID != "" && b.GroupID != latest.GroupID) {
			continue
		}
		if wantType != uredisv1alpha1.BackupTypeAny && b.Type != string(wantType) {
			continue
		}
		if !found || b.Time.After(best.Time) || (b.Time.Equal(best.Time) && b.ID > best.ID) {
			best, found = b, true
		}
	}
	return best, found
}

func backupTypeOrAny(t uredisv1alpha1.BackupType) uredisv1alpha1.BackupType {
	if t == "" {
		return uredisv1alpha1.BackupTypeAny
	}
	return t
}
