{{/*
The chart's name, and the prefix of every object's name. With the release
named uredis-backup-operator, objects get the names config/default gives them.
*/}}
{{- define "uredis-backup-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "uredis-backup-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "uredis-backup-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "uredis-backup-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The manager's pods: the labels config/manager gives them (which
config/network-policy selects), and the release.
*/}}
{{- define "uredis-backup-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "uredis-backup-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end }}

{{/* The manager's ServiceAccount. */}}
{{- define "uredis-backup-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "uredis-backup-operator.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The metrics Service (a DNS label: at most 63 characters). */}}
{{- define "uredis-backup-operator.metricsServiceName" -}}
{{- printf "%s-controller-manager-metrics-service" (include "uredis-backup-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The metrics port's name: what the ServiceMonitor scrapes. */}}
{{- define "uredis-backup-operator.metricsPortName" -}}
{{- if .Values.metrics.secure }}https{{ else }}http-metrics{{ end }}
{{- end }}

{{/*
The namespaces the manager watches, and where it is granted its rights:
watchNamespaces, plus the release's own namespace when the operator-wide
credentials Secret lives there (the manager reads it from its cache). Empty:
all namespaces.
*/}}
{{- define "uredis-backup-operator.watchNamespaces" -}}
{{- $namespaces := .Values.watchNamespaces }}
{{- if and $namespaces .Values.operatorCredentials.secretName }}
{{- $namespaces = append $namespaces .Release.Namespace }}
{{- end }}
{{- $namespaces | uniq | join "," }}
{{- end }}

{{/*
GOMEMLIMIT: goMemLimit, or 70% of the memory limit in MiB, rounded (90MiB of
128Mi, as config/manager and the benchmark have it); empty without either.
*/}}
{{- define "uredis-backup-operator.goMemLimit" -}}
{{- if .Values.goMemLimit }}
{{- .Values.goMemLimit }}
{{- else }}
{{- $limit := dig "limits" "memory" "" .Values.resources | toString }}
{{- if $limit }}
{{- $pattern := "^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$" }}
{{- if not (regexMatch $pattern $limit) }}
{{- fail (printf "resources.limits.memory %q: GOMEMLIMIT can be derived only from a whole number with an optional Ki, Mi, Gi, Ti, k, M, G or T suffix; set goMemLimit" $limit) }}
{{- end }}
{{- $units := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 }}
{{- $bytes := mul (regexReplaceAll $pattern $limit "${1}" | int64) (get $units (regexReplaceAll $pattern $limit "${2}")) }}
{{- printf "%dMiB" (div (add (mul $bytes 7) 5242880) 10485760) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Checks of values that the schema cannot express. */}}
{{- define "uredis-backup-operator.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled: every replica would reconcile every resource" }}
{{- end }}
{{- with .Values.operatorCredentials }}
{{- if and (or .namespaces .namespaceSelector) (not .secretName) }}
{{- $fromEnv := false }}
{{- range $.Values.extraEnv }}
{{- if eq .name "UCLOUD_PUBLIC_KEY" }}{{ $fromEnv = true }}{{ end }}
{{- end }}
{{- if not $fromEnv }}
{{- fail "operatorCredentials.namespaces or namespaceSelector allow namespaces the operator's own credentials, but there are none: set operatorCredentials.secretName (or UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY in extraEnv)" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.api.caBundle.configMap .Values.api.caBundle.secret }}
{{- fail "api.caBundle: set configMap or secret, not both" }}
{{- end }}
{{- if and .Values.metrics.certSecret (not .Values.metrics.secure) }}
{{- fail "metrics.certSecret is for HTTPS: it needs metrics.secure" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- end }}
