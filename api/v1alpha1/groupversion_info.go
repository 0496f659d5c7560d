// Package v1alpha1 contains the v1alpha1 API of the uredis.dezai.com group.
// +kubebuilder:object:generate=true
// +groupName=uredis.dezai.com
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "uredis.dezai.com", Version: "v1alpha1"}

	// GroupVersionKind is the RedisBackupExport kind, as owner references
	// name it.
	GroupVersionKind = GroupVersion.WithKind("RedisBackupExport")

	// ClusterGroupVersionKind is the ClusterRedisBackupExport kind.
	ClusterGroupVersionKind = GroupVersion.WithKind("ClusterRedisBackupExport")

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	// It is apimachinery's builder, so that importing this package does
	// not import controller-runtime.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the kinds and their lists.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &RedisBackupExport{}, &RedisBackupExportList{},
		&ClusterRedisBackupExport{}, &ClusterRedisBackupExportList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
