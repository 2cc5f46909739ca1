{{/* Checks across values that a JSON schema cannot express; each failure says what to change. */}}
{{- define "kubenetmon-agent.validate" -}}
{{- if le (float64 .Values.terminationGracePeriodSeconds) (float64 .Values.config.drainTimeout) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed config.drainTimeout (%v): the kubelet kills the agent after it, so the last batches would be cut off while being delivered. Raise terminationGracePeriodSeconds or lower config.drainTimeout." .Values.terminationGracePeriodSeconds .Values.config.drainTimeout) }}
{{- end }}
{{- end }}
