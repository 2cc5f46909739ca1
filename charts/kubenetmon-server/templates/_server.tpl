{{/* Checks across values that a JSON schema cannot explain well; each failure says what to change. */}}
{{- define "kubenetmon-server.validate" -}}
{{- if and (eq .Values.store.type "embedded") (ne (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount is %v but store.type=embedded needs exactly 1: a chDB database can be opened by one process only. Set replicaCount=1, or use store.type=clickhouse for more replicas." .Values.replicaCount) }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.certManager.enabled) (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled needs a certificate: set tls.certManager.enabled=true, or tls.existingSecret to a Secret with tls.crt, tls.key and ca.crt (or tls.enabled=false for plaintext lab use)." }}
{{- end }}
{{- if and .Values.tls.enabled .Values.tls.certManager.enabled (not .Values.tls.certManager.createIssuer) (not .Values.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.createIssuer=false needs tls.certManager.issuerRef.name: the cert-manager issuer that signs the server certificate." }}
{{- end }}
{{- if and .Values.wal.persistence.enabled (ne (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount is %v but wal.persistence.enabled needs exactly 1: each server needs a write-ahead log of its own, and the chart makes one claim. Set replicaCount=1, or wal.persistence.enabled=false (an emptyDir per pod)." .Values.replicaCount) }}
{{- end }}
{{- if and (not .Values.kubernetes.enabled) (not .Values.inventory.enabled) }}
{{- fail "kubernetes.enabled=false needs inventory.enabled=true with inventory.content: without the Kubernetes API only a static inventory can name the addresses in flows." }}
{{- end }}
{{- if lt (float64 .Values.terminationGracePeriodSeconds) (mulf 3 .Values.config.shutdownGrace) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least three times config.shutdownGrace (%v): the server spends up to that long per shutdown step, and the kubelet kills it after terminationGracePeriodSeconds. Raise terminationGracePeriodSeconds or lower config.shutdownGrace." .Values.terminationGracePeriodSeconds .Values.config.shutdownGrace) }}
{{- end }}
{{- end }}

{{/* One server owns its database and write-ahead log volumes: the old pod must let go before the new one starts. */}}
{{- define "kubenetmon-server.singleOwner" -}}
{{- if or (eq .Values.store.type "embedded") .Values.wal.persistence.enabled }}true{{ end }}
{{- end }}

{{/* Namespaces whose agent pods may report for their node: the configured ones, or this release's. */}}
{{- define "kubenetmon-server.agentNamespaces" -}}
{{- join " " (default (list .Release.Namespace) .Values.agentIdentity.namespaces) }}
{{- end }}

{{/*
The --store DSN: the embedded database in the store volume, or a ClickHouse server. The password never
appears in it (it is read from --store-password-file).
*/}}
{{- define "kubenetmon-server.storeDsn" -}}
{{- $params := dict }}
{{- with .Values.store.table }}{{ $_ := set $params "table" . }}{{ end }}
{{- if eq .Values.store.type "embedded" }}
{{- printf "chdb://%s" (include "kubenetmon-server.storeDir" .) }}
{{- else }}
{{- $ch := .Values.store.clickhouse }}
{{- range $key, $value := $ch.params }}{{ $_ := set $params $key (toString $value) }}{{ end }}
{{- if $ch.caSecret }}{{ $_ := set $params "ca_cert" "/etc/kubenetmon/clickhouse-ca/ca.crt" }}{{ end }}
{{- printf "%s://%s@%s:%d/%s" (ternary "https" "http" $ch.secure) ($ch.username | urlquery) $ch.host (int $ch.port) $ch.database }}
{{- end }}
{{- $query := list }}
{{- range $key := keys $params | sortAlpha }}{{ $query = append $query (printf "%s=%s" $key (get $params $key | urlquery)) }}{{ end }}
{{- if $query }}?{{ join "&" $query }}{{ end }}
{{- end }}

{{/* Where the embedded database lives in the container: the command's default directory. */}}
{{- define "kubenetmon-server.storeDir" -}}
/var/lib/kubenetmon
{{- end }}

{{/* Where the write-ahead log lives in the container: the command's default directory. */}}
{{- define "kubenetmon-server.walDir" -}}
/var/lib/kubenetmon-wal
{{- end }}

{{/* Name of the Secret holding the ClickHouse password, or "" when the user has none. */}}
{{- define "kubenetmon-server.passwordSecret" -}}
{{- if eq .Values.store.type "clickhouse" }}
{{- if .Values.store.clickhouse.existingSecret }}
{{- .Values.store.clickhouse.existingSecret }}
{{- else if .Values.store.clickhouse.password }}
{{- printf "%s-clickhouse" (include "kubenetmon.fullname" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the Secret with the server's certificate, key and the CA that signs agent certificates. */}}
{{- define "kubenetmon-server.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "kubenetmon.fullname" .) }}
{{- else }}
{{- .Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{/* Cluster-scoped objects carry the namespace too, so same-named releases in two namespaces do not collide. */}}
{{- define "kubenetmon-server.clusterName" -}}
{{- printf "%s-%s" (include "kubenetmon.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}
