{{/*
Helpers shared by both kubenetmon charts. The two charts keep identical copies of this file (a test
checks it), because a chart must render on its own without a library-chart dependency.
*/}}

{{/* Chart name, or nameOverride. */}}
{{- define "kubenetmon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: the release name, plus the chart name unless the release name has it. */}}
{{- define "kubenetmon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "kubenetmon.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select the agent pods; they never change across upgrades. */}}
{{- define "kubenetmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubenetmon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "kubenetmon.labels" -}}
{{ include "kubenetmon.selectorLabels" . }}
app.kubernetes.io/component: {{ trimPrefix "kubenetmon-" .Chart.Name }}
app.kubernetes.io/part-of: kubenetmon
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "kubenetmon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubenetmon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubenetmon.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
One value of `config` as an environment variable string. Helm reads every YAML number as a float, so
whole numbers are printed as integers (1e+06 would not parse as an int option); lists are joined with
spaces, which is how click splits a repeatable option's environment variable.
*/}}
{{- define "kubenetmon.envValue" -}}
{{- if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}{{ $items = append $items (include "kubenetmon.envValue" .) }}{{ end }}
{{- join " " $items }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* Environment variables KUBENETMON_<KEY> for every set key of `config`. */}}
{{- define "kubenetmon.configEnv" -}}
{{- range $key, $value := .Values.config }}
{{- if not (or (eq (toString $value) "") (and (kindIs "slice" $value) (empty $value))) }}
- name: KUBENETMON_{{ $key | snakecase | upper }}
  value: {{ include "kubenetmon.envValue" $value | quote }}
{{- end }}
{{- end }}
{{- end }}
