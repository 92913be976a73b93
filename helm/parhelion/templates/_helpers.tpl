{{/* Names and labels shared by Parhelion's own templates. */}}

{{- define "parhelion.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "parhelion.labels" -}}
app.kubernetes.io/name: parhelion
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "parhelion.selector" -}}
app.kubernetes.io/name: parhelion
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}


{{/* Pod and container security settings every Parhelion pod uses. */}}
{{- define "parhelion.podSecurity" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "parhelion.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The dask-gateway chart's fullname, as that chart makes it. */}}
{{- define "parhelion.gatewayFullname" -}}
{{- $gateway := index .Values "dask-gateway" -}}
{{- if $gateway.fullnameOverride -}}
{{- $gateway.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "dask-gateway" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-dask-gateway" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The dask-gateway chart's API server ServiceAccount, named as that chart names it. */}}
{{- define "parhelion.gatewayServiceAccount" -}}
{{- $gateway := index .Values "dask-gateway" -}}
{{- $rbac := (($gateway.rbac | default dict).gateway | default dict) -}}
{{- if $rbac.serviceAccountName -}}
{{- $rbac.serviceAccountName -}}
{{- else -}}
{{- printf "api-%s" (include "parhelion.gatewayFullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
