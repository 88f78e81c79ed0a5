{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "zendesk-cdc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: RELEASE-zendesk-cdc, or the release name if it already contains it. */}}
{{- define "zendesk-cdc.fullname" -}}
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

{{- define "zendesk-cdc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zendesk-cdc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zendesk-cdc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zendesk-cdc.labels" -}}
helm.sh/chart: {{ include "zendesk-cdc.chart" . }}
{{ include "zendesk-cdc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "zendesk-cdc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zendesk-cdc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* existingSecret.keys entry -> the setting it feeds. */}}
{{- define "zendesk-cdc.secretEnv" -}}
zendeskEmail: ZENDESK_CDC_ZENDESK_EMAIL
zendeskApiToken: ZENDESK_CDC_ZENDESK_API_TOKEN
oauthAccessToken: ZENDESK_CDC_ZENDESK_OAUTH_ACCESS_TOKEN
oauthClientId: ZENDESK_CDC_ZENDESK_OAUTH_CLIENT_ID
oauthClientSecret: ZENDESK_CDC_ZENDESK_OAUTH_CLIENT_SECRET
oauthRefreshToken: ZENDESK_CDC_ZENDESK_OAUTH_REFRESH_TOKEN
saslUsername: ZENDESK_CDC_SASL_USERNAME
saslPassword: ZENDESK_CDC_SASL_PASSWORD
schemaRegistryBasicAuth: ZENDESK_CDC_SCHEMA_REGISTRY_BASIC_AUTH
{{- end }}

{{/* Settings the chart derives itself, so values cannot contradict the pod spec. */}}
{{- define "zendesk-cdc.reservedSettings" -}}
- ZENDESK_CDC_STATE_DIR
- ZENDESK_CDC_HTTP_ADDRESS
{{- end }}

{{/* Fail early on settings that would be ignored or clash, rather than at pod start. */}}
{{- define "zendesk-cdc.validateSettings" -}}
{{- $reserved := include "zendesk-cdc.reservedSettings" . | fromYamlArray }}
{{- $secretEnv := include "zendesk-cdc.secretEnv" . | fromYaml }}
{{- range $name, $value := .Values.settings }}
{{- if not (hasPrefix "ZENDESK_CDC_" $name) }}
{{- fail (printf "settings.%s: every setting is a ZENDESK_CDC_* name from the README table" $name) }}
{{- end }}
{{- if has $name $reserved }}
{{- fail (printf "settings.%s is set by the chart (persistence.mountPath / service.port)" $name) }}
{{- end }}
{{- range $key, $env := $secretEnv }}
{{- if and (eq $env $name) (get $.Values.existingSecret.keys $key) }}
{{- fail (printf "settings.%s clashes with existingSecret.keys.%s" $name $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $key, $secretKey := .Values.existingSecret.keys }}
{{- if not (hasKey $secretEnv $key) }}
{{- fail (printf "existingSecret.keys.%s is not a known credential" $key) }}
{{- end }}
{{- if and $secretKey (not $.Values.existingSecret.name) }}
{{- fail (printf "existingSecret.keys.%s is set but existingSecret.name is empty" $key) }}
{{- end }}
{{- end }}
{{- end }}
