{{/* Names and labels shared by every template. */}}

{{- define "kvop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kvop.fullname" -}}
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

{{- define "kvop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kvop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kvop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kvop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace `kvop run --namespace` watches, when namespaced. */}}
{{- define "kvop.watchNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace }}
{{- end }}

{{/* Leader election is forced on with more than one replica: two active operators would
only race on conditional writes, but they would still double every request. */}}
{{- define "kvop.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{- define "kvop.leaseName" -}}
{{- default (printf "%s-leader" (include "kvop.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The RBAC rules of deploy/clusterrole.yaml, from files/rbac-rules.yaml (a copy), as a
list; "kvop.leaseRules" and "kvop.namespaceRules" split them for namespaced mode. */}}
{{- define "kvop.rules" -}}
{{- .Files.Get "files/rbac-rules.yaml" | fromYamlArray | toYaml }}
{{- end }}

{{- define "kvop.leaseRules" -}}
{{- $rules := list }}
{{- range (.Files.Get "files/rbac-rules.yaml" | fromYamlArray) }}
{{- if has "coordination.k8s.io" .apiGroups }}
{{- $rules = append $rules . }}
{{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{- define "kvop.namespaceRules" -}}
{{- $rules := list }}
{{- range (.Files.Get "files/rbac-rules.yaml" | fromYamlArray) }}
{{- if not (has "coordination.k8s.io" .apiGroups) }}
{{- $rules = append $rules . }}
{{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{/* Refuse contradicting values before anything is rendered. */}}
{{- define "kvop.validate" -}}
{{- $auth := list }}
{{- range $name := list "credentials" "nkey" "userPassword" "token" }}
{{- if (index $.Values.nats $name).secretName }}
{{- $auth = append $auth (printf "nats.%s" $name) }}
{{- end }}
{{- end }}
{{- if gt (len $auth) 1 }}
{{- fail (printf "at most one NATS authentication method may be set, got %s" (join ", " $auth)) }}
{{- end }}
{{- if and .Values.nats.jsDomain .Values.nats.jsApiPrefix }}
{{- fail "nats.jsDomain and nats.jsApiPrefix exclude each other" }}
{{- end }}
{{- if and .Values.watchNamespace (not .Values.namespaced) }}
{{- fail "watchNamespace is only used with namespaced: true" }}
{{- end }}
{{- if and (not .Values.nats.tls.secretName) .Values.nats.tls.clientCertificate }}
{{- fail "nats.tls.clientCertificate needs nats.tls.secretName" }}
{{- end }}
{{- end }}
