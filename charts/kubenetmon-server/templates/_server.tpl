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
{{- end }}

{{/* The --store DSN. The password never appears in it (it is read from --store-password-file). */}}
{{- define "kubenetmon-server.storeDsn" -}}
{{- if eq .Values.store.type "embedded" }}
{{- "chdb:///var/lib/kubenetmon/store" }}
{{- else }}
{{- $ch := .Values.store.clickhouse }}
{{- $params := dict }}
{{- range $key, $value := $ch.params }}{{ $_ := set $params $key (toString $value) }}{{ end }}
{{- if $ch.caSecret }}{{ $_ := set $params "ca_cert" "/etc/kubenetmon/clickhouse-ca/ca.crt" }}{{ end }}
{{- $query := list }}
{{- range $key := keys $params | sortAlpha }}{{ $query = append $query (printf "%s=%s" $key (get $params $key | urlquery)) }}{{ end }}
{{- printf "%s://%s@%s:%d/%s" (ternary "https" "http" $ch.secure) ($ch.username | urlquery) $ch.host (int $ch.port) $ch.database }}
{{- if $query }}?{{ join "&" $query }}{{ end }}
{{- end }}
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
