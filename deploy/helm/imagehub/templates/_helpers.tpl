{{- define "imagehub.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{- define "imagehub.labels" -}}
app.kubernetes.io/name: imagehub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "imagehub.hubSelector" -}}
app.kubernetes.io/name: imagehub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end -}}

{{- define "imagehub.tritonSelector" -}}
app.kubernetes.io/name: imagehub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: triton
{{- end -}}

{{- define "imagehub.image" -}}
{{ .Values.image.repository }}{{ if .Values.image.digest }}@{{ .Values.image.digest }}{{ else }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{ end }}
{{- end -}}

{{/* The restricted pod security context every imagehub pod runs with. */}}
{{- define "imagehub.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "imagehub.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment of every hub container: settings from the ConfigMap, secrets by reference. */}}
{{- define "imagehub.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "imagehub.fullname" . }}
env:
  - name: DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
        key: {{ .Values.database.secretKey }}
{{- if .Values.s3.existingSecret }}
  - name: AWS_ACCESS_KEY_ID
    valueFrom:
      secretKeyRef:
        name: {{ .Values.s3.existingSecret }}
        key: {{ .Values.s3.accessKeyIdKey }}
  - name: AWS_SECRET_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.s3.existingSecret }}
        key: {{ .Values.s3.secretAccessKeyKey }}
{{- end }}
{{- if .Values.oidc.enabled }}
  - name: OIDC_CLIENT_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ required "oidc.existingSecret is required when oidc.enabled" .Values.oidc.existingSecret }}
        key: {{ .Values.oidc.clientSecretKey }}
{{- end }}
{{- end -}}

{{/* SHUTDOWN_TIMEOUT in seconds: the hub's one deadline for finishing its
requests and then its River jobs (cmd/imagehub serve), so the longest
request first and the jobs' time after it. 60 is the server's ReadTimeout
(app.ReadTimeout): an upload caught by SIGTERM must be able to finish. */}}
{{- define "imagehub.shutdownSeconds" -}}
{{- $longest := int .Values.hub.longestRequestSeconds -}}
{{- if lt $longest 60 -}}
{{- fail "hub.longestRequestSeconds must be at least 60, the hub's ReadTimeout: an upload in flight at shutdown would be cut" -}}
{{- end -}}
{{- add $longest (int .Values.hub.shutdownTimeoutSeconds) -}}
{{- end -}}

{{/* The Triton pods the hub may ever see: KEDA's most, or the fixed count. */}}
{{- define "imagehub.tritonPods" -}}
{{- $n := ternary (int .Values.triton.keda.maxReplicas) (int .Values.triton.replicas) .Values.triton.keda.enabled -}}
{{- if or (lt $n 1) (gt $n 64) -}}
{{- fail "triton.keda.maxReplicas (or triton.replicas without KEDA) is 1 to 64: the hub takes at most 64 endpoints a model" -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{/* One endpoint per Triton pod, by its StatefulSet DNS name, as JSON. */}}
{{- define "imagehub.tritonEndpoints" -}}
{{- $full := include "imagehub.fullname" . -}}
{{- $eps := list -}}
{{- range $i := until (include "imagehub.tritonPods" . | int) -}}
{{- $eps = append $eps (printf "http://%s-triton-%d.%s-triton.%s.svc:8000" $full $i $full $.Release.Namespace) -}}
{{- end -}}
{{- toJson $eps -}}
{{- end -}}
