package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons written to status.conditions.
const (
	// ConditionReady is True while the target Secret holds a valid, unexpired
	// link for the current spec.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator is still working
	// towards Ready, for example retrying after a transient failure.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True while progress needs the user: credentials,
	// permissions, the spec or a clashing Secret must change.
	ConditionStalled = "Stalled"

	// AnnotationRefreshRequestedAt forces a refresh when set to a new value
	// (for example a timestamp); status.lastHandledRefreshRequest records
	// the value handled, so that each value fires once.
	AnnotationRefreshRequestedAt = "uredis.dezai.com/refresh-requested-at"
)

// Reasons of the Ready condition.
const (
	// ReasonRefreshed: the Secret holds a fresh link.
	ReasonRefreshed = "Refreshed"
	// ReasonRefreshFailing: the current link is still valid, but refreshing
	// it failed transiently and is being retried.
	ReasonRefreshFailing = "RefreshFailing"
	// ReasonCredentialsNotFound: the credentials Secret does not exist.
	ReasonCredentialsNotFound = "CredentialsNotFound"
	// ReasonCredentialsKeyMissing: the credentials Secret lacks a key.
	ReasonCredentialsKeyMissing = "CredentialsKeyMissing"
	// ReasonCredentialsValueEmpty: a key of the credentials Secret is empty.
	ReasonCredentialsValueEmpty = "CredentialsValueEmpty"
	// ReasonCredentialsNotAllowed: spec.credentialsRef is omitted, and the
	// operator's own credentials are not available to this namespace.
	ReasonCredentialsNotAllowed = "CredentialsNotAllowed"
	// ReasonCredentialsRejected: the API refused the credentials (wrong
	// private key, unknown public key, unknown token: RetCode 170-174).
	ReasonCredentialsRejected = "CredentialsRejected"
	// ReasonProviderRejected: the API refused the request in a way retrying
	// will not fix (permissions, unknown project or backup...).
	ReasonProviderRejected = "ProviderRejected"
	// ReasonProviderUnavailable: the API failed transiently and there is no
	// valid link to fall back on.
	ReasonProviderUnavailable = "ProviderUnavailable"
	// ReasonSecretConflict: the target Secret exists and is not managed by
	// this resource; the operator leaves it alone.
	ReasonSecretConflict = "SecretConflict"
	// ReasonSecretWriteRefused: the API server refused to write the target
	// Secret (an admission webhook or policy, a quota, RBAC).
	ReasonSecretWriteRefused = "SecretWriteRefused"
	// ReasonLinkExpired: the link in the Secret has expired and refreshing
	// it keeps failing.
	ReasonLinkExpired = "LinkExpired"
	// ReasonNoBackupFound: spec.latest found no successful backup of the
	// instance (yet).
	ReasonNoBackupFound = "NoBackupFound"
	// ReasonLinkTooShort: the API returned a link that expires too soon to be
	// useful.
	ReasonLinkTooShort = "LinkTooShort"
	// ReasonCredentialsInvalid: a credentials key name or value does not
	// look like a cloud credential, so it is not sent.
	ReasonCredentialsInvalid = "CredentialsInvalid"
	// ReasonTargetInvalid: the API server found the target Secret the spec
	// describes invalid (HTTP 422); nothing is retried until the spec
	// changes.
	ReasonTargetInvalid = "TargetInvalid"
	// ReasonTemplateInvalid: a template of spec.target.template does not
	// parse, or fails to render; the Secret is left as it is, and nothing is
	// retried until the spec changes.
	ReasonTemplateInvalid = "TemplateInvalid"
	// ReasonSuspended: spec.suspend is true, so the operator neither calls
	// the API nor writes the Secret. Ready stays True while the Secret holds
	// a valid link, and turns False when it expires.
	ReasonSuspended = "Suspended"
)

// RedisBackupExportSpec names a URedis backup whose time-limited download
// link the operator keeps fresh in a Secret.
type RedisBackupExportSpec struct {
	// The backup: the fields a ClusterRedisBackupExport shares.
	BackupSelection `json:",inline"`

	// credentialsRef names the Secret, in the resource's own namespace, that
	// holds the cloud API key pair. When it is omitted, the operator's own
	// credentials are used, if its administrator allows them for this
	// namespace (they are off by default).
	// +optional
	CredentialsRef *CredentialsReference `json:"credentialsRef,omitempty"`

	// target describes the Secret the operator writes the link into.
	// +optional
	Target TargetSecret `json:"target,omitempty"`

	// suspend, when true, stops every call to the cloud API and every
	// write of the target Secret for this resource: no refresh, no forced
	// refresh (a refresh-requested-at value is acknowledged and declined),
	// no repair of a deleted or edited Secret. The Ready condition (reason
	// Suspended) stays True while the Secret holds a valid link and turns
	// False when that link expires. Setting it back to false refreshes at
	// once if the refresh was due meanwhile or the link is gone, and
	// otherwise keeps the planned refresh.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// rolloutRestartTargets are workloads in the resource's namespace
	// whose pods are restarted, by a pod template annotation, when the
	// Secret's backup changes (or, per target, its link). Not on the first
	// link of a new resource, nor on an operator restart, a failed refresh
	// or while suspended; at most once per change. A target that does not
	// exist, or cannot be patched, gets a Warning Event and is left until
	// the next change; Ready does not depend on it.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	RolloutRestartTargets []RolloutRestartTarget `json:"rolloutRestartTargets,omitempty"`
}

// BackupSelection names the backup whose link is exported, and when the
// link is refreshed: the spec fields RedisBackupExport and
// ClusterRedisBackupExport share (each inlines it).
// +kubebuilder:validation:XValidation:rule="has(self.backupId) != has(self.latest)",message="set exactly one of backupId (a fixed backup) and latest (the newest backup of an instance)"
// +kubebuilder:validation:XValidation:rule="!has(self.latest) || !has(self.groupId) || self.groupId == self.latest.groupId",message="groupId must equal latest.groupId when both are set"
// +kubebuilder:validation:XValidation:rule="!has(self.slaveZone) || (has(self.regionFlag) && self.regionFlag)",message="slaveZone may only be set together with regionFlag: true (it names the slave's zone of a cross-IDC instance)"
// +kubebuilder:validation:XValidation:rule="!has(self.slaveZone) || !has(self.zone) || self.slaveZone != self.zone",message="slaveZone must differ from zone"
type BackupSelection struct {
	// backupId is the ID of the backup to export, as the cloud API reports it
	// (for example a UUID). Exactly one of backupId and latest is set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	BackupID string `json:"backupId,omitempty"`

	// latest exports the newest successful backup of an instance instead of
	// a fixed one; it is looked up again at every refresh, so a new nightly
	// backup is picked up. Exactly one of backupId and latest is set.
	// +optional
	Latest *LatestBackup `json:"latest,omitempty"`

	// region is the cloud region of the backup, for example cn-bj2.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+(-[a-z0-9]+)*$`
	Region string `json:"region"`

	// zone is the availability zone of the instance, for example cn-bj2-04.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+(-[a-z0-9]+)*$`
	Zone string `json:"zone,omitempty"`

	// projectId is the cloud project; the account's default project when
	// empty. Sub-accounts must set it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_-]*$`
	ProjectID string `json:"projectId,omitempty"`

	// groupId is the ID of the Redis instance the backup belongs to.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_-]*$`
	GroupID string `json:"groupId,omitempty"`

	// regionFlag marks a cross-IDC instance (the API's RegionFlag).
	// +optional
	RegionFlag *bool `json:"regionFlag,omitempty"`

	// slaveZone is the zone of the slave of a cross-IDC instance. Only valid
	// with regionFlag: true, and never equal to zone.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+(-[a-z0-9]+)*$`
	SlaveZone string `json:"slaveZone,omitempty"`

	// isCrossRegion asks for the cross-region backup link (the API's
	// IsCrossRegion).
	// +optional
	IsCrossRegion *bool `json:"isCrossRegion,omitempty"`

	// refreshBefore is how long before the link expires it is refreshed.
	// By default a refresh happens when a third of the link's lifetime
	// remains; a value of half the lifetime or more falls back to that
	// default. Refreshes are moved earlier at random by up to a tenth of
	// this window, so that many resources do not refresh in the same second.
	// +optional
	// +kubebuilder:validation:XValidation:rule="size(self) <= 32",message="refreshBefore may have at most 32 characters"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="refreshBefore must be a duration of at least 1s, such as 30m or 1h"
	RefreshBefore *metav1.Duration `json:"refreshBefore,omitempty"`
}

// LatestBackup selects the newest successful backup of an instance.
type LatestBackup struct {
	// groupId is the ID of the Redis instance.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_-]*$`
	GroupID string `json:"groupId"`

	// backupType restricts the choice to automatic or manual backups.
	// +optional
	// +kubebuilder:default=Any
	BackupType BackupType `json:"backupType,omitempty"`
}

// BackupType is the kind of backup latest may choose.
// +kubebuilder:validation:Enum=Auto;Manual;Any
type BackupType string

// Backup types.
const (
	BackupTypeAuto   BackupType = "Auto"
	BackupTypeManual BackupType = "Manual"
	BackupTypeAny    BackupType = "Any"
)

// CredentialsReference points at a Secret in the same namespace holding an
// API key pair. There is deliberately no namespace field: a resource can only
// use credentials its own namespace already holds.
type CredentialsReference struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// The key names must look like what they name (publicKey, public_key,
	// UCLOUD_PUBLIC_KEY...; likewise for the private key and the token), so
	// that a resource cannot have any other value of the Secret, such as a
	// service account token, sent to the cloud API.

	// publicKeyKey is the key of the public key in the Secret's data. It must
	// end in publicKey, public_key, public-key or public.key (any case).
	// +optional
	// +kubebuilder:default=publicKey
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]*(?i:public[-_.]?key)$`
	PublicKeyKey string `json:"publicKeyKey,omitempty"`

	// privateKeyKey is the key of the private key in the Secret's data. It
	// must end in privateKey, private_key, private-key or private.key (any
	// case).
	// +optional
	// +kubebuilder:default=privateKey
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]*(?i:private[-_.]?key)$`
	PrivateKeyKey string `json:"privateKeyKey,omitempty"`

	// securityTokenKey is the key of an optional security token (temporary
	// credentials) in the Secret's data; when the key holds a value, it is
	// sent and signed as SecurityToken. It must end in securityToken,
	// security_token, security-token or security.token (any case).
	// +optional
	// +kubebuilder:default=securityToken
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]*(?i:security[-_.]?token)$`
	SecurityTokenKey string `json:"securityTokenKey,omitempty"`
}

// TargetSecret describes the Secret that receives the link.
type TargetSecret struct {
	// name of the Secret to write, in the resource's namespace. Defaults to
	// the resource's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`

	// creationPolicy says who owns the Secret. Owner (the default): the
	// Secret is owned by the resource and garbage-collected with it. Orphan:
	// the Secret is kept when the resource is deleted.
	// +optional
	// +kubebuilder:default=Owner
	CreationPolicy CreationPolicy `json:"creationPolicy,omitempty"`

	// keys renames the Secret's keys, for example backupPath: BACKUP_URL for
	// a workload that uses envFrom.
	// +optional
	Keys SecretKeys `json:"keys,omitempty"`

	// labels are added to the Secret. Keys and values follow Kubernetes'
	// label syntax (a value has at most 63 characters).
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k).hasValue())",message="every label key must be a valid Kubernetes label key: an optional DNS subdomain prefix and '/', then at most 63 characters of [-._a-zA-Z0-9] beginning and ending with an alphanumeric"
	// +kubebuilder:validation:XValidation:rule="!('app.kubernetes.io/managed-by' in self)",message="the label app.kubernetes.io/managed-by is set by the operator"
	Labels map[string]LabelValue `json:"labels,omitempty"`

	// annotations are added to the Secret. Keys follow Kubernetes'
	// annotation key syntax; a value has at most 4096 characters.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k.lowerAscii()).hasValue())",message="every annotation key must be a valid Kubernetes annotation key: an optional DNS subdomain prefix and '/', then at most 63 characters of [-._a-zA-Z0-9] beginning and ending with an alphanumeric"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('uredis.dezai.com/'))",message="annotations under uredis.dezai.com/ are set by the operator"
	Annotations map[string]AnnotationValue `json:"annotations,omitempty"`

	// template renders the Secret's data from Go templates, for consumers
	// that want the link in a shape of their own (an rclone or curl config
	// file, an env file, a URL with more parameters).
	// +optional
	Template *SecretTemplate `json:"template,omitempty"`
}

// SecretTemplate renders the target Secret's data with Go text/template and
// a subset of the sprig functions (none that read the environment, files or
// the network, nor random or time-dependent ones). Each template sees the
// fields .backupPath, .innerBackupPath (empty when the API returns no
// internal link), .expiresAt (RFC 3339, UTC), .expiresAtUnix (Unix seconds),
// .backupId and .region; a field of another name fails the rendering.
// range, define, template and block are refused, and each key's output is
// limited to 64 KiB (512 KiB in all), so that a template renders in bounded
// time and memory.
type SecretTemplate struct {
	// data maps a key of the Secret to the template of its value.
	// +required
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$') && k != '.' && !k.startsWith('..'))",message="every key of template.data must be a valid Secret key: at most 253 characters of [-._a-zA-Z0-9], neither '.' nor starting with '..'"
	Data map[string]TemplateText `json:"data"`

	// type of the Secret. Only Opaque: the operator's admission policy lets
	// it write no other type, and a Secret's type cannot change once it
	// exists.
	// +optional
	// +kubebuilder:default=Opaque
	Type SecretType `json:"type,omitempty"`

	// mergePolicy says what the Secret holds. Replace (the default): only
	// the templated keys. Merge: the default keys (named by keys) and the
	// templated ones; a templated key replaces a default key of the same
	// name.
	// +optional
	// +kubebuilder:default=Replace
	MergePolicy TemplateMergePolicy `json:"mergePolicy,omitempty"`
}

// TemplateText is a Go text/template, at most 16 KiB.
// +kubebuilder:validation:MaxLength=16384
type TemplateText string

// SecretType is the type of the target Secret.
// +kubebuilder:validation:Enum=Opaque
type SecretType string

// SecretTypeOpaque is the one Secret type the operator writes.
const SecretTypeOpaque SecretType = "Opaque"

// TemplateMergePolicy says whether templated keys replace or join the
// default keys.
// +kubebuilder:validation:Enum=Replace;Merge
type TemplateMergePolicy string

// Merge policies.
const (
	MergePolicyReplace TemplateMergePolicy = "Replace"
	MergePolicyMerge   TemplateMergePolicy = "Merge"
)

// LabelValue is the value of a label: empty, or at most 63 characters of
// [-._a-zA-Z0-9] beginning and ending with an alphanumeric.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// AnnotationValue is the value of an annotation, at most 4096 characters.
// +kubebuilder:validation:MaxLength=4096
type AnnotationValue string

// CreationPolicy says who owns the target Secret.
// +kubebuilder:validation:Enum=Owner;Orphan
type CreationPolicy string

// Creation policies.
const (
	CreationPolicyOwner  CreationPolicy = "Owner"
	CreationPolicyOrphan CreationPolicy = "Orphan"
)

// SecretKeys names the keys of the target Secret; each defaults to its
// field's name.
// +kubebuilder:validation:XValidation:rule="[has(self.backupPath) ? self.backupPath : 'backupPath', has(self.expiresAt) ? self.expiresAt : 'expiresAt', has(self.backupId) ? self.backupId : 'backupId', has(self.region) ? self.region : 'region', has(self.innerBackupPath) ? self.innerBackupPath : 'innerBackupPath'].all(k, [has(self.backupPath) ? self.backupPath : 'backupPath', has(self.expiresAt) ? self.expiresAt : 'expiresAt', has(self.backupId) ? self.backupId : 'backupId', has(self.region) ? self.region : 'region', has(self.innerBackupPath) ? self.innerBackupPath : 'innerBackupPath'].exists_one(j, j == k))",message="the Secret's keys must all be different"
type SecretKeys struct {
	// backupPath is the key of the download link.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	BackupPath string `json:"backupPath,omitempty"`
	// expiresAt is the key of the link's expiry (RFC 3339).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	ExpiresAt string `json:"expiresAt,omitempty"`
	// backupId is the key of the exported backup's ID.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	BackupID string `json:"backupId,omitempty"`
	// region is the key of the backup's region.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Region string `json:"region,omitempty"`
	// innerBackupPath is the key of the internal-network link.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	InnerBackupPath string `json:"innerBackupPath,omitempty"`
}

// RedisBackupExportStatus is the observed state of a RedisBackupExport.
type RedisBackupExportStatus struct {
	// backupId is the backup the current link is for: spec.backupId, or the
	// one spec.latest chose.
	// +optional
	BackupID string `json:"backupId,omitempty"`

	// backupPath is the current download link. It is a bearer credential
	// until expiresAt: whoever can read this resource can download the
	// backup.
	// +optional
	BackupPath string `json:"backupPath,omitempty"`

	// expiresAt is when backupPath stops working.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// lastRefreshTime is when the current link was obtained.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// nextRefreshTime is when the operator plans to fetch a new link.
	// +optional
	NextRefreshTime *metav1.Time `json:"nextRefreshTime,omitempty"`

	// secretName is the name of the Secret holding the link.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// observedGeneration is the generation of the spec the operator last
	// finished an attempt for, whatever its outcome (the kstatus convention
	// that Flux, Argo CD and kubectl wait rely on). It is 0 until the first
	// attempt ends, so a resource the operator has not looked at yet reads as
	// in progress.
	// +optional
	// +kubebuilder:default=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// linkGeneration is the generation of the spec the current link was
	// obtained for.
	// +optional
	LinkGeneration int64 `json:"linkGeneration,omitempty"`

	// failureCount is the number of consecutive failed refresh attempts;
	// it drives the retry backoff and is reset by a success.
	// +optional
	FailureCount int32 `json:"failureCount,omitempty"`

	// lastFailureTime is when the last refresh attempt failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// secretResourceVersion is the target Secret's resourceVersion when the
	// operator last wrote it or checked its content. A Secret with another
	// resourceVersion was changed since, and the operator reads it once to
	// check its data; otherwise it knows the data without reading it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SecretResourceVersion string `json:"secretResourceVersion,omitempty"`

	// specDigest is a digest of the spec of observedGeneration, spec.suspend
	// and spec.rolloutRestartTargets left out: a later generation with the
	// same digest changed nothing but those, and keeps the link and the
	// planned refresh.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SpecDigest string `json:"specDigest,omitempty"`

	// lastHandledRefreshRequest is the value of the
	// uredis.dezai.com/refresh-requested-at annotation last acted upon.
	// +optional
	LastHandledRefreshRequest string `json:"lastHandledRefreshRequest,omitempty"`

	// rolloutRestarts is the last restart of each of spec.rolloutRestartTargets
	// (targets never restarted, or no longer listed, have none).
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	RolloutRestarts []RolloutRestart `json:"rolloutRestarts,omitempty"`

	// conditions describe the resource's state; Ready is the one to watch.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RedisBackupExport keeps a time-limited download link of a URedis backup
// fresh in a Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rbe,categories=uredis
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.status.backupId`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.credentialsRef) || self.spec.credentialsRef.name != (has(self.spec.target) && has(self.spec.target.name) ? self.spec.target.name : self.metadata.name)",message="the target Secret must not be the credentials Secret: set spec.target.name to another name"
type RedisBackupExport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RedisBackupExportSpec `json:"spec"`

	// The default gives a new resource status.observedGeneration 0, which
	// differs from its generation until the operator has answered.
	// +optional
	// +kubebuilder:default={}
	Status RedisBackupExportStatus `json:"status,omitempty"`
}

// TargetSecretName is the name of the Secret the link is written to.
func (r *RedisBackupExport) TargetSecretName() string {
	if r.Spec.Target.Name != "" {
		return r.Spec.Target.Name
	}
	return r.Name
}

// RedisBackupExportList is a list of RedisBackupExport.
// +kubebuilder:object:root=true
type RedisBackupExportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RedisBackupExport `json:"items"`
}
