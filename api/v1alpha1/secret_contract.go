package v1alpha1

// The Secret contract: what the operator writes into a target Secret, for
// restore Jobs and other consumers to rely on. The names are API: they are
// documented in docs/reference.md and never change within a version.
const (
	// Default keys of the target Secret's data; spec.target.keys renames
	// them.
	KeyBackupPath      = "backupPath"
	KeyExpiresAt       = "expiresAt"
	KeyBackupID        = "backupId"
	KeyRegion          = "region"
	KeyInnerBackupPath = "innerBackupPath"

	// LabelManagedBy marks the Secrets this operator writes; its cache holds
	// only Secrets with this label.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "uredis-backup-operator"
	// AnnotationDataHash holds a hash of the Secret's data, so that edits are
	// detected and workloads can roll when the link changes.
	AnnotationDataHash = "uredis.dezai.com/data-hash"
	// AnnotationExportUID names the resource that created the Secret. It is
	// how an orphaned Secret (no owner reference) is still recognised as the
	// resource's own, and never confused with a foreign one.
	AnnotationExportUID = "uredis.dezai.com/export-uid"
)

// Resolved is the Secret's key names: those k renames, and the default keys
// for the others.
func (k SecretKeys) Resolved() SecretKeys {
	or := func(key, def string) string {
		if key != "" {
			return key
		}
		return def
	}
	return SecretKeys{
		BackupPath:      or(k.BackupPath, KeyBackupPath),
		ExpiresAt:       or(k.ExpiresAt, KeyExpiresAt),
		BackupID:        or(k.BackupID, KeyBackupID),
		Region:          or(k.Region, KeyRegion),
		InnerBackupPath: or(k.InnerBackupPath, KeyInnerBackupPath),
	}
}
