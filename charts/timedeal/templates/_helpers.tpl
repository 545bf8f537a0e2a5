{{/* Names: <release>-timedeal unless the release name already says timedeal. */}}
{{- define "timedeal.fullname" -}}
{{- if contains "timedeal" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-timedeal" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "timedeal.labels" -}}
app.kubernetes.io/name: timedeal
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: timedeal
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels that select one component's pods: (dict "root" $ "component" "order") */}}
{{- define "timedeal.selectorLabels" -}}
app.kubernetes.io/name: timedeal
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "timedeal.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* A service's Kubernetes name: (dict "root" $ "name" "order") */}}
{{- define "timedeal.serviceName" -}}
{{- printf "%s-%s" (include "timedeal.fullname" .root) .name -}}
{{- end -}}

{{/* A service's values: serviceDefaults overlaid with services.<name>. */}}
{{- define "timedeal.serviceValues" -}}
{{- $own := index .root.Values.services .name | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.serviceDefaults) (deepCopy $own)) -}}
{{- end -}}

{{/* The services this chart deploys, in start order, each once. */}}
{{- define "timedeal.enabledServices" -}}
{{- $names := list -}}
{{- range $name := list "user" "goods" "order" "payment" "chat" "gateway" -}}
{{- $values := index $.Values.services $name | default dict -}}
{{- if $values.enabled -}}{{- $names = append $names $name -}}{{- end -}}
{{- end -}}
{{- join " " $names -}}
{{- end -}}

{{/* The services that own a MySQL database and so have migrations. */}}
{{- define "timedeal.migratingServices" -}}
{{- $names := list -}}
{{- range $name := splitList " " (include "timedeal.enabledServices" .) -}}
{{- if has $name (list "user" "goods" "order" "payment" "chat") -}}{{- $names = append $names $name -}}{{- end -}}
{{- end -}}
{{- join " " $names -}}
{{- end -}}

{{/*
The Secret the services read. Refuses to render without real secrets unless development
values were asked for.
*/}}
{{- define "timedeal.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "timedeal.checkSecrets" . -}}
{{- printf "%s-secrets" (include "timedeal.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "timedeal.checkSecrets" -}}
{{- $s := .Values.secrets -}}
{{- if and (not .Values.development) (not $s.existingSecret) -}}
{{- $missing := list -}}
{{- if not $s.internalApiSecret }}{{ $missing = append $missing "secrets.internalApiSecret" }}{{ end -}}

{{- if not $s.dataKeys }}{{ $missing = append $missing "secrets.dataKeys" }}{{ end -}}
{{- if not $s.smtpUrl }}{{ $missing = append $missing "secrets.smtpUrl" }}{{ end -}}
{{- if $missing -}}
{{- fail (printf "\n\ntimedeal: no secrets given (%s not set).\nName an existing Secret with the keys INTERNAL_API_SECRET, MYSQL_PASSWORD, DATA_KEYS and SMTP_URL (--set secrets.existingSecret=NAME),\nor give the values (--set secrets.internalApiSecret=... --set secrets.mysqlPassword=... --set secrets.dataKeys=... --set secrets.smtpUrl=...).\nFor a development install with the built-in development secrets, use -f values-development.yaml (development: true).\n" (join ", " $missing)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The values of the chart-made Secret: given values, or the services' development defaults. */}}
{{- define "timedeal.secretData" -}}
{{- $s := .Values.secrets -}}
INTERNAL_API_SECRET: {{ $s.internalApiSecret | default "timedeal-dev-internal-secret" | b64enc | quote }}
MYSQL_PASSWORD: {{ $s.mysqlPassword | default "timedeal" | b64enc | quote }}
DATA_KEYS: {{ $s.dataKeys | default "dev1:dGltZWRlYWwtZGV2ZWxvcG1lbnQta2V5LTMyYnl0ZXM=" | b64enc | quote }}
{{- with $s.smtpUrl }}
SMTP_URL: {{ . | b64enc | quote }}
{{- end }}
{{- end -}}

{{/* The Secret keys each deployable reads, and nothing more. */}}
{{- define "timedeal.secretKeys" -}}
{{- $keys := dict "user" (list "INTERNAL_API_SECRET" "MYSQL_PASSWORD" "DATA_KEYS" "SMTP_URL") "goods" (list "INTERNAL_API_SECRET" "MYSQL_PASSWORD") "order" (list "INTERNAL_API_SECRET" "MYSQL_PASSWORD") "payment" (list "MYSQL_PASSWORD") "chat" (list "INTERNAL_API_SECRET" "MYSQL_PASSWORD") "gateway" (list) "operator" (list "MYSQL_PASSWORD") -}}
{{- join " " (index $keys .name) -}}
{{- end -}}

{{/* env entries reading a deployable's Secret keys: (dict "root" $ "name" "order") */}}
{{- define "timedeal.secretEnv" -}}
{{- $secret := include "timedeal.secretName" .root -}}
{{- range $key := splitList " " (include "timedeal.secretKeys" .) | compact }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      {{- if eq $key "SMTP_URL" }}
      # Development installs send no mail (MAILER=sink) and need no SMTP server.
      optional: true
      {{- end }}
{{- end }}
{{- if eq .name "chat" }}
# A database URL with credentials lives in the Secret when present; the ConfigMap's otherwise.
- name: MONGO_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: MONGO_URL
      optional: true
{{- end }}
{{- end -}}

{{/* The Ingress host's origin, for the chat's Origin check. */}}
{{- define "timedeal.publicOrigin" -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.ingress.tls.secretName))) .Values.ingress.host -}}
{{- end -}}

{{/* Settings every deployable shares (the ConfigMap <fullname>-shared). */}}
{{- define "timedeal.sharedConfig" -}}
{{- $user := include "timedeal.serviceName" (dict "root" . "name" "user") -}}
{{- $goods := include "timedeal.serviceName" (dict "root" . "name" "goods") -}}
TIMEDEAL_ENV: {{ ternary "development" "production" (eq .Values.development true) | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
HTTP_HOST: "0.0.0.0"
MIGRATE_ON_START: "false"
MYSQL_HOST: {{ .Values.mysql.host | quote }}
MYSQL_PORT: {{ .Values.mysql.port | quote }}
MYSQL_USER: {{ .Values.mysql.user | quote }}
REDIS_URL: {{ .Values.redis.url | quote }}
KAFKA_BROKERS: {{ .Values.kafka.brokers | quote }}
KAFKA_TOPIC_PREFIX: {{ .Values.kafka.topicPrefix | quote }}
MONGO_URL: {{ .Values.mongo.url | quote }}
JWT_JWKS_URL: {{ printf "http://%s:%v/.well-known/jwks.json" $user .Values.services.user.port | quote }}
GOODS_URL: {{ printf "http://%s:%v" $goods .Values.services.goods.port | quote }}
GOODS_INTERNAL_URL: {{ printf "http://%s:%v" $goods (add .Values.services.goods.port 100) | quote }}
{{- end -}}

{{/* One service's own settings (the ConfigMap <fullname>-<service>): (dict "root" $ "name" "order") */}}
{{- define "timedeal.serviceConfig" -}}
{{- $root := .root -}}
{{- $values := include "timedeal.serviceValues" . | fromYaml -}}
HTTP_PORT: {{ $values.port | quote }}
INTERNAL_PORT: {{ add $values.port 100 | quote }}
{{- if eq .name "chat" }}
CHAT_ALLOWED_ORIGINS: {{ join "," ($values.allowedOrigins | default (list (include "timedeal.publicOrigin" $root))) | quote }}
{{- end }}
{{- if and (eq .name "user") (not $root.Values.development) }}
MAILER: "smtp"
{{- end }}
{{- if eq .name "user" }}
{{- /* My page reads these services' public routes with the caller's token. */}}
{{- range $upstream := list "order" "chat" }}
{{ upper $upstream }}_URL: {{ printf "http://%s:%v" (include "timedeal.serviceName" (dict "root" $root "name" $upstream)) (index $root.Values.services $upstream).port | quote }}
{{- end }}
{{- end }}
{{- if eq .name "gateway" }}
{{- /* Reached only through the Ingress: the proxy's X-Forwarded-* headers are the client's. */}}
TRUST_PROXY: {{ ternary "true" "false" (and $root.Values.ingress.enabled (eq ($values.serviceType | default "ClusterIP") "ClusterIP")) | quote }}
{{- range $upstream := list "user" "goods" "order" "payment" "chat" }}
{{ upper $upstream }}_URL: {{ printf "http://%s:%v" (include "timedeal.serviceName" (dict "root" $root "name" $upstream)) (index $root.Values.services $upstream).port | quote }}
{{- end }}
{{- end }}
{{- range $key, $value := $values.env }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The same settings as env entries (for hook Jobs, which run before ConfigMaps exist). */}}
{{- define "timedeal.configEnv" -}}
{{- range $key, $value := (include "timedeal.sharedConfig" .root | fromYaml) }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range $key, $value := (include "timedeal.serviceConfig" . | fromYaml) }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "timedeal.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Node writes nothing but temporary files; the root filesystem stays read-only. */}}
{{- define "timedeal.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}
