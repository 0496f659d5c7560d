package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxNamespaceFailures bounds status.namespaceFailures of a
// ClusterRedisBackupExport: the first failures by namespace name, the rest
// only counted in status.namespaceFailureCount.
const MaxNamespaceFailures = 5

// ClusterRedisBackupExportSpec names a URedis backup whose time-limited
// download link the operator writes, after one API call per refresh, into a
// Secret in every selected namespace.
// +kubebuilder:validation:XValidation:rule="has(self.namespaceSelector) || (has(self.namespaces) && size(self.namespaces) > 0)",message="select the namespaces that receive the Secret: set namespaceSelector, namespaces, or both"
type ClusterRedisBackupExportSpec struct {
	// The backup, as on a RedisBackupExport.
	BackupSelection `json:",inline"`

	// credentialsRef names the Secret, in the namespace it names, that holds
	// the cloud API key pair. Only cluster administrators create this
	// resource, so any namespace may be named; the credentials never leave
	// the operator.
	// +required
	CredentialsRef ClusterCredentialsReference `json:"credentialsRef"`

	// target describes the Secret written into every selected namespace.
	// Its name defaults to the resource's name. A template is rendered once
	// per refresh, and every namespace gets the same rendering.
	// +optional
	Target TargetSecret `json:"target,omitempty"`

	// namespaceSelector selects the namespaces that receive the Secret by
	// their labels; it is OR-ed with namespaces. An empty selector ({})
	// selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// namespaces lists namespaces that receive the Secret, OR-ed with
	// namespaceSelector. A listed namespace that does not exist (yet) is
	// skipped until it does.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// suspend, when true, stops every call to the cloud API and every
	// Secret write in every namespace: no refresh, no repair of a deleted
	// or edited Secret, nothing for a namespace that starts to match, and
	// a namespace that stops matching keeps its Secret until the resource
	// is resumed. The Ready condition (reason Suspended) stays True while
	// every selected namespace holds a valid link, and turns False when
	// that link expires. Setting it back to false refreshes at once if the
	// refresh was due meanwhile or the link is gone, and otherwise keeps
	// the planned refresh and writes the current link where it is missing.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ClusterCredentialsReference points at a Secret holding an API key pair,
// in an explicit namespace.
type ClusterCredentialsReference struct {
	// The Secret's name and key names, as on a RedisBackupExport.
	CredentialsReference `json:",inline"`

	// namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
}

// NamespaceFailure is why one selected namespace does not hold the link.
type NamespaceFailure struct {
	// namespace that failed.
	Namespace string `json:"namespace"`
	// reason, one of the Ready condition's failure reasons (SecretConflict,
	// SecretWriteRefused, TargetInvalid).
	Reason string `json:"reason"`
	// message says what to fix; it never contains the link.
	// +optional
	Message string `json:"message,omitempty"`
}

// ClusterRedisBackupExportStatus is the observed state of a
// ClusterRedisBackupExport. It never holds the link itself: every reader of
// cluster-scoped resources could read it.
type ClusterRedisBackupExportStatus struct {
	// backupId is the backup the current link is for.
	// +optional
	BackupID string `json:"backupId,omitempty"`

	// expiresAt is when the current link stops working.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// lastRefreshTime is when the current link was obtained.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// nextRefreshTime is when the operator plans to fetch a new link.
	// +optional
	NextRefreshTime *metav1.Time `json:"nextRefreshTime,omitempty"`

	// secretName is the name of the Secret in every selected namespace.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// linkSpec is a digest of the spec fields the current link and its
	// Secret data depend on (the backup, the credentials, the Secret's key
	// names and its template): another digest means a new link is needed.
	// Changing the namespaces, labels or annotations, or suspend, needs
	// none.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LinkSpec string `json:"linkSpec,omitempty"`

	// dataHash is the uredis.dezai.com/data-hash of the Secrets holding the
	// current link: a Secret with this hash (and unedited data) holds it.
	// With a template, the hash covers the rendered data and the link's
	// expiry.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	DataHash string `json:"dataHash,omitempty"`

	// namespacesSelected is the number of existing namespaces the spec
	// selects.
	// +optional
	NamespacesSelected int32 `json:"namespacesSelected,omitempty"`

	// namespacesWritten is the number of selected namespaces whose Secret
	// holds the current link.
	// +optional
	NamespacesWritten int32 `json:"namespacesWritten,omitempty"`

	// namespaceFailures are the first failed namespaces by name (at most
	// 5); namespaceFailureCount counts them all.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	// +listType=atomic
	NamespaceFailures []NamespaceFailure `json:"namespaceFailures,omitempty"`

	// namespaceFailureCount is the number of selected namespaces whose
	// Secret could not be written.
	// +optional
	NamespaceFailureCount int32 `json:"namespaceFailureCount,omitempty"`

	// observedGeneration is the generation of the spec the operator last
	// finished an attempt for, whatever its outcome (kstatus).
	// +optional
	// +kubebuilder:default=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// failureCount is the number of consecutive failed refresh attempts;
	// it drives the retry backoff and is reset by a success.
	// +optional
	FailureCount int32 `json:"failureCount,omitempty"`

	// lastFailureTime is when the last refresh attempt failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// conditions describe the resource's state; Ready is the one to watch.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ClusterRedisBackupExport keeps a time-limited download link of a URedis
// backup fresh in a Secret in many namespaces, with one API call per
// refresh. For cluster administrators only.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=crbe,categories=uredis
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.status.backupId`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.namespacesWritten`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.namespaceFailureCount`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterRedisBackupExport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ClusterRedisBackupExportSpec `json:"spec"`

	// +optional
	// +kubebuilder:default={}
	Status ClusterRedisBackupExportStatus `json:"status,omitempty"`
}

// TargetSecretName is the name of the Secret written in every namespace.
func (r *ClusterRedisBackupExport) TargetSecretName() string {
	if r.Spec.Target.Name != "" {
		return r.Spec.Target.Name
	}
	return r.Name
}

// ClusterRedisBackupExportList is a list of ClusterRedisBackupExport.
// +kubebuilder:object:root=true
type ClusterRedisBackupExportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterRedisBackupExport `json:"items"`
}

// Reasons of a ClusterRedisBackupExport's Ready condition, besides those of
// a RedisBackupExport.
const (
	// ReasonNamespacesPending: the link is valid, but some selected
	// namespaces do not hold it yet; the operator is writing them.
	ReasonNamespacesPending = "NamespacesPending"
	// ReasonNoNamespaceSelected: no existing namespace matches
	// spec.namespaceSelector or spec.namespaces, so no link is fetched.
	ReasonNoNamespaceSelected = "NoNamespaceSelected"
	// ReasonNamespaceSelectorInvalid: spec.namespaceSelector cannot be
	// turned into a label selector.
	ReasonNamespaceSelectorInvalid = "NamespaceSelectorInvalid"
)
