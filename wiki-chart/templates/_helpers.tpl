{{/*
Names and labels, in one place. Every template takes its object names and labels
from here, so a selector can never drift from the labels it selects.
*/}}

{{/* The chart name, overridable with nameOverride. */}}
{{- define "wiki-chart.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object's name: "<release>-<chart>", or just the release name when
it already contains the chart name (so `helm install wiki-chart ./wiki-chart` gives
"wiki-chart-api", not "wiki-chart-wiki-chart-api"). At most 63 characters (DNS label).
*/}}
{{- define "wiki-chart.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "wiki-chart-<version>", the value of the helm.sh/chart label. */}}
{{- define "wiki-chart.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels of one component: the labels a Service or a workload selects on.
They never change for the life of a release (a Deployment's selector is immutable).
Usage: include "wiki-chart.selectorLabels" (dict "context" $ "component" "api")
*/}}
{{- define "wiki-chart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wiki-chart.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
All labels of one component's objects: the selector labels plus the standard ones.
app.kubernetes.io/version is the version of what the component runs: its image tag
(PostgreSQL, Prometheus), the chart's appVersion for the API and what belongs to it.
*/}}
{{- define "wiki-chart.labels" -}}
{{ include "wiki-chart.selectorLabels" . }}
app.kubernetes.io/version: {{ include "wiki-chart.componentVersion" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: {{ include "wiki-chart.name" .context }}
helm.sh/chart: {{ include "wiki-chart.chart" .context }}
{{- end -}}

{{/*
A pod template's labels: the chart's own, plus the component's podLabels value, which
can add labels but never replace the chart's (selectors depend on them). Not
helm.sh/chart: a label changed in a pod template replaces the pods, and a new chart
version alone must not restart anything (PostgreSQL's one pod least of all).
Usage: include "wiki-chart.podLabels" (dict "context" $ "component" "api" "extra" .Values.api.podLabels)
*/}}
{{- define "wiki-chart.podLabels" -}}
{{- $own := omit (include "wiki-chart.labels" . | fromYaml) "helm.sh/chart" -}}
{{- toYaml (merge $own (.extra | default dict)) -}}
{{- end -}}

{{- define "wiki-chart.componentVersion" -}}
{{- $values := .context.Values -}}
{{- if and (eq .component "postgresql") (eq $values.database.mode "cloudnative-pg") -}}
{{- $values.cloudnativePg.image.tag -}}
{{- else if eq .component "pooler" -}}
{{- $values.cloudnativePg.pooler.image.tag -}}
{{- else if has .component (list "postgresql" "backup") -}}
{{- $values.postgresql.image.tag -}}
{{- else if eq .component "prometheus" -}}
{{- $values.prometheus.image.tag -}}
{{- else if eq .component "grafana" -}}
{{- $values.grafana.image.tag -}}
{{- else if eq .component "alertmanager" -}}
{{- $values.alertmanager.image.tag -}}
{{- else -}}
{{- default .context.Chart.AppVersion $values.api.image.tag -}}
{{- end -}}
{{- end -}}

{{/*
An image reference from {repository, tag, digest}: "repo@sha256:..." when a digest is
given (the tag is then informational only), else "repo:tag".
*/}}
{{- define "wiki-chart.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{/*
The API image. The original chart's value `fastapi.image_name` ("repo:tag"), when set,
still overrides it, so users of that chart keep their values file.
*/}}
{{- define "wiki-chart.api.image" -}}
{{- if and .Values.fastapi .Values.fastapi.image_name -}}
{{- .Values.fastapi.image_name -}}
{{- else -}}
{{- include "wiki-chart.image" (dict "repository" .Values.api.image.repository "tag" (default .Chart.AppVersion .Values.api.image.tag) "digest" .Values.api.image.digest) -}}
{{- end -}}
{{- end -}}

{{- define "wiki-chart.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wiki-chart.api.fullname" -}}
{{- printf "%s-api" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* database.mode, one helper per mode ("true" or ""): the chart's own PostgreSQL ... */}}
{{- define "wiki-chart.database.builtin" -}}
{{- if eq .Values.database.mode "builtin" -}}true{{- end -}}
{{- end -}}

{{/* ... a CloudNativePG Cluster ... */}}
{{- define "wiki-chart.database.cloudnativePg" -}}
{{- if eq .Values.database.mode "cloudnative-pg" -}}true{{- end -}}
{{- end -}}

{{/* ... or a PostgreSQL run elsewhere. */}}
{{- define "wiki-chart.database.external" -}}
{{- if eq .Values.database.mode "external" -}}true{{- end -}}
{{- end -}}

{{/* The CloudNativePG Cluster's name (cloudnativePg.clusterName, or the built-in PostgreSQL's name). */}}
{{- define "wiki-chart.cloudnativePg.clusterName" -}}
{{- .Values.cloudnativePg.clusterName | default (include "wiki-chart.postgresql.fullname" .) -}}
{{- end -}}

{{/* The Pooler's name, which is also its Service's: <cluster>-pooler-rw. */}}
{{- define "wiki-chart.cloudnativePg.poolerName" -}}
{{- printf "%s-pooler-rw" (include "wiki-chart.cloudnativePg.clusterName" .) -}}
{{- end -}}

{{/* The ObjectStore's name: the Barman Cloud plugin's settings for where backups go. */}}
{{- define "wiki-chart.cloudnativePg.objectStoreName" -}}
{{- printf "%s-backups" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The labels of the Cluster's PostgreSQL pods, as the operator sets them. The operator
also sets app.kubernetes.io/name, instance and component on its pods (postgresql, the
Cluster's name, database): the chart does not fight it for those keys, so its
network policies and scrape jobs select the operator's pods by the operator's labels,
and the chart-wide policies (default deny, DNS) do not select them.
*/}}
{{- define "wiki-chart.cloudnativePg.instanceSelector" -}}
cnpg.io/cluster: {{ include "wiki-chart.cloudnativePg.clusterName" . }}
cnpg.io/podRole: instance
{{- end -}}

{{/* The labels of the Pooler's PgBouncer pods, as the operator sets them. */}}
{{- define "wiki-chart.cloudnativePg.poolerSelector" -}}
cnpg.io/poolerName: {{ include "wiki-chart.cloudnativePg.poolerName" . }}
cnpg.io/podRole: pooler
{{- end -}}

{{/* Where the API finds its database: the chart's PostgreSQL, the Cluster's primary (or its Pooler), or an external one. */}}
{{- define "wiki-chart.database.host" -}}
{{- if include "wiki-chart.database.builtin" . -}}
{{- include "wiki-chart.postgresql.fullname" . -}}
{{- else if include "wiki-chart.database.cloudnativePg" . -}}
{{- if .Values.cloudnativePg.pooler.enabled -}}
{{- include "wiki-chart.cloudnativePg.poolerName" . -}}
{{- else -}}
{{- printf "%s-rw" (include "wiki-chart.cloudnativePg.clusterName" .) -}}
{{- end -}}
{{- else -}}
{{- required "externalDatabase.host is required when database.mode is external" .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "wiki-chart.database.port" -}}
{{- if include "wiki-chart.database.builtin" . -}}
{{- .Values.postgresql.service.port -}}
{{- else if include "wiki-chart.database.cloudnativePg" . -}}
5432
{{- else -}}
{{- .Values.externalDatabase.port -}}
{{- end -}}
{{- end -}}

{{- define "wiki-chart.database.name" -}}
{{- if include "wiki-chart.database.builtin" . -}}{{ .Values.postgresql.auth.database }}
{{- else if include "wiki-chart.database.cloudnativePg" . -}}{{ .Values.cloudnativePg.database }}
{{- else -}}{{ .Values.externalDatabase.database }}{{- end -}}
{{- end -}}

{{- define "wiki-chart.database.user" -}}
{{- if include "wiki-chart.database.builtin" . -}}{{ .Values.postgresql.auth.username }}
{{- else if include "wiki-chart.database.cloudnativePg" . -}}{{ .Values.cloudnativePg.owner }}
{{- else -}}{{ .Values.externalDatabase.username }}{{- end -}}
{{- end -}}

{{/*
The Secret holding the API's database password: one named by a value, the chart's own,
or, with CloudNativePG, the operator's <cluster>-app (or cloudnativePg.appSecret).
*/}}
{{- define "wiki-chart.database.secretName" -}}
{{- if include "wiki-chart.database.cloudnativePg" . -}}
{{- .Values.cloudnativePg.appSecret | default (printf "%s-app" (include "wiki-chart.cloudnativePg.clusterName" .)) -}}
{{- else -}}
{{- $existing := ternary .Values.postgresql.auth.existingSecret .Values.externalDatabase.existingSecret (eq .Values.database.mode "builtin") -}}
{{- if $existing -}}
{{- $existing -}}
{{- else -}}
{{- printf "%s-database" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "wiki-chart.database.secretKey" -}}
{{- if include "wiki-chart.database.cloudnativePg" . -}}password
{{- else -}}
{{- ternary .Values.postgresql.auth.secretKey .Values.externalDatabase.secretKey (eq .Values.database.mode "builtin") -}}
{{- end -}}
{{- end -}}

{{/*
Whether the chart renders the database Secret itself: only for an external database
whose password is in externalDatabase.password. The chart's own PostgreSQL gets its
generated passwords from the database-credentials Job instead (generatePasswords).
*/}}
{{- define "wiki-chart.database.createSecret" -}}
{{- if and (include "wiki-chart.database.external" .) (not .Values.externalDatabase.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* Whether the database-credentials Job generates the chart's PostgreSQL passwords (no existing Secret named). */}}
{{- define "wiki-chart.postgresql.generatePasswords" -}}
{{- if and (include "wiki-chart.database.builtin" .) (not .Values.postgresql.auth.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/*
The keys of the database Secret the chart's PostgreSQL needs, one per role, as a JSON
list: the API's, the superuser's, and the exporter's and the backup's when they are on.
*/}}
{{- define "wiki-chart.postgresql.secretKeys" -}}
{{- $keys := list .Values.postgresql.auth.secretKey .Values.postgresql.auth.superuserSecretKey -}}
{{- if include "wiki-chart.postgresql.metricsEnabled" . }}{{ $keys = append $keys .Values.postgresql.metrics.secretKey }}{{ end -}}
{{- if include "wiki-chart.postgresql.backupEnabled" . }}{{ $keys = append $keys .Values.postgresql.backup.secretKey }}{{ end -}}
{{- if ne (len $keys) (len (uniq $keys)) -}}
{{- fail (printf "the database Secret's keys must differ, but they are %v (postgresql.auth.secretKey, auth.superuserSecretKey, metrics.secretKey, backup.secretKey)" $keys) -}}
{{- end -}}
{{- toJson $keys -}}
{{- end -}}

{{- define "wiki-chart.credentials.fullname" -}}
{{- printf "%s-database-credentials" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The annotations of the database-credentials hook's objects: run before every install
and upgrade (Argo CD runs them as PreSync hooks), replaced at the next run, and
deleted once they succeeded, so that no account able to write Secrets stays behind.
Usage: include "wiki-chart.credentials.hookAnnotations" (dict "weight" "-10")
*/}}
{{- define "wiki-chart.credentials.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}

{{/*
What the API pods' checksum/database-password annotation hashes, so that a changed
password rolls them (environment variables are read only when a container starts):
externalDatabase.password when the chart stores it; the data of an existing Secret as
`lookup` reads it from the cluster at install or upgrade time (after changing the
Secret, run `helm upgrade` to roll the pods; `helm template` sees no cluster and hashes
nothing). A generated password is not hashed: it never changes (the database-credentials Job
keeps it), and hashing a freshly generated one would roll the pods on the first upgrade
for nothing.
*/}}
{{- define "wiki-chart.database.passwordChecksum" -}}
{{- $password := "" -}}
{{- if include "wiki-chart.database.createSecret" . -}}
{{- $password = .Values.externalDatabase.password -}}
{{- else if not (include "wiki-chart.postgresql.generatePasswords" .) -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "wiki-chart.database.secretName" .) -}}
{{- $password = dig "data" (include "wiki-chart.database.secretKey" .) "" $secret -}}
{{- end -}}
{{- $password | sha256sum -}}
{{- end -}}

{{/* The security context every container of this chart runs with. */}}
{{- define "wiki-chart.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "wiki-chart.prometheus.fullname" -}}
{{- printf "%s-prometheus" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prometheus's --storage.tsdb.retention.size: prometheus.retention.size if set, else 85%
of the volume, so the TSDB deletes old blocks before the volume fills (compaction and
the WAL need headroom above the limit). The volume size may be any Kubernetes quantity
of bytes (2Gi, 1.5Gi, 1500Mi, 2G); Prometheus's MB/GB are powers of two, like
Kubernetes' Mi/Gi. Refused: a value above 85% of the volume, and a volume so small
that 85% of it is not a single MB (Prometheus reads a size of 0 as "no limit").
*/}}
{{/*
The path prefix Prometheus serves under: prometheus.routePrefix, else the path of
prometheus.externalUrl (as Prometheus itself decides), without a trailing slash; ""
for the root. Probes and the self-scrape use it.
*/}}
{{- define "wiki-chart.prometheus.routePrefix" -}}
{{- $exposed := and .Values.ingress.enabled .Values.ingress.prometheus.enabled -}}
{{- $prefix := .Values.prometheus.routePrefix | default (urlParse (.Values.prometheus.externalUrl | default "http://localhost/")).path -}}
{{- if and $exposed (eq (trimSuffix "/" $prefix) "") -}}
{{- $prefix = .Values.ingress.prometheus.path -}}
{{- end -}}
{{- trimSuffix "/" $prefix -}}
{{- end -}}

{{/*
The path Grafana is served under: grafana.subPath, else /grafana when the Ingress
routes to it, else "" (the root). grafana.ini, the probes and the Ingress all use it.
*/}}
{{- define "wiki-chart.grafana.subPath" -}}
{{- .Values.grafana.subPath | default (ternary "/grafana" "" .Values.ingress.enabled) -}}
{{- end -}}

{{/*
The bytes of a Kubernetes quantity of bytes (2Gi, 1.5Gi, 1500Mi, 2G), as a whole number.
Usage: include "wiki-chart.quantityBytes" (dict "value" "2Gi" "name" "prometheus.persistence.size")
*/}}
{{- define "wiki-chart.quantityBytes" -}}
{{- $size := toString .value -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $size -}}
{{- $suffix := trimPrefix $number $size -}}
{{- $bytesPer := dict "" 1.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "P" 1000000000000000.0 -}}
{{- if or (eq $number "") (not (hasKey $bytesPer $suffix)) -}}
{{- fail (printf "%s %q is not a Kubernetes quantity of bytes (e.g. 2Gi, 1.5Gi, 1500Mi, 2G)" .name $size) -}}
{{- end -}}
{{- mulf (float64 $number) (get $bytesPer $suffix) | floor | int64 -}}
{{- end -}}

{{- define "wiki-chart.prometheus.retentionSize" -}}
{{- $size := toString .Values.prometheus.persistence.size -}}
{{- $volumeMiB := divf (include "wiki-chart.quantityBytes" (dict "value" $size "name" "prometheus.persistence.size") | float64) 1048576.0 -}}
{{- $limitMiB := floor (mulf $volumeMiB 0.85) | int64 -}}
{{- if lt $limitMiB 1 -}}
{{- fail (printf "prometheus.persistence.size %s is too small: 85%% of it is less than 1MB, and Prometheus would read a retention size of 0 as no limit at all" $size) -}}
{{- end -}}
{{- with .Values.prometheus.retention.size -}}
{{- $asked := regexFind "^[0-9]+" . | int64 -}}
{{- $askedMiB := ternary (mul $asked 1024) $asked (hasSuffix "GB" .) -}}
{{- if gt (int64 $askedMiB) $limitMiB -}}
{{- fail (printf "prometheus.retention.size %s is more than 85%% of the %s volume (at most %dMB): the volume would fill before Prometheus deletes old data" . $size $limitMiB) -}}
{{- end -}}
{{- if lt (int64 $askedMiB) 1 -}}
{{- fail (printf "prometheus.retention.size %s is 0: Prometheus would read it as no limit at all" .) -}}
{{- end -}}
{{- . -}}
{{- else -}}
{{- printf "%dMB" $limitMiB -}}
{{- end -}}
{{- end -}}

{{/*
The scrape timeout of the chart's Prometheus, in seconds: Prometheus's default of
10 s, or the scrape interval where that is shorter (Prometheus caps the timeout at
the interval). The interval is a Prometheus duration such as 15s or 1m30s.
*/}}
{{- define "wiki-chart.prometheus.scrapeTimeoutSeconds" -}}
{{- minf 10.0 (include "wiki-chart.durationSeconds" .Values.prometheus.scrapeInterval | float64) -}}
{{- end -}}

{{/* The seconds of a Prometheus duration such as 15s, 1m30s or 48h. */}}
{{- define "wiki-chart.durationSeconds" -}}
{{- $seconds := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 "w" 604800.0 "y" 31536000.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" . -1 -}}
{{- $unit := regexFind "(ms|s|m|h|d|w|y)$" . -}}
{{- $total = addf $total (mulf (regexFind "^[0-9]+" . | float64) (get $seconds $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{- define "wiki-chart.alertmanager.fullname" -}}
{{- printf "%s-alertmanager" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wiki-chart.grafana.fullname" -}}
{{- printf "%s-grafana" (include "wiki-chart.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret with Grafana's admin user and password: an existing one, or the chart's. */}}
{{- define "wiki-chart.grafana.adminSecretName" -}}
{{- .Values.grafana.admin.existingSecret | default (printf "%s-admin" (include "wiki-chart.grafana.fullname" .)) -}}
{{- end -}}

{{/* The Prometheus Grafana queries: grafana.prometheusUrl, else the chart's own Service. */}}
{{- define "wiki-chart.grafana.prometheusUrl" -}}
{{- if .Values.grafana.prometheusUrl -}}
{{- .Values.grafana.prometheusUrl -}}
{{- else if .Values.prometheus.enabled -}}
{{- printf "http://%s:%v%s" (include "wiki-chart.prometheus.fullname" .) .Values.prometheus.service.port (include "wiki-chart.prometheus.routePrefix" .) -}}
{{- else -}}
{{- fail "grafana needs a Prometheus: set prometheus.enabled=true or grafana.prometheusUrl" -}}
{{- end -}}
{{- end -}}

{{/* The Ingress's paths (templates/ingress.yaml explains them). */}}
{{- define "wiki-chart.ingress.paths" -}}
{{- $api := include "wiki-chart.api.fullname" . }}
{{- range list "/users" "/user" "/posts" "/docs" }}
- path: {{ . }}
  pathType: Prefix
  backend:
    service:
      name: {{ $api }}
      port:
        name: http
{{- end }}
- path: /openapi.json
  pathType: Exact
  backend:
    service:
      name: {{ $api }}
      port:
        name: http
{{- if .Values.grafana.enabled }}
- path: {{ include "wiki-chart.grafana.subPath" . }}
  pathType: Prefix
  backend:
    service:
      name: {{ include "wiki-chart.grafana.fullname" . }}
      port:
        name: http
{{- end }}
{{- if and .Values.ingress.prometheus.enabled .Values.prometheus.enabled }}
- path: {{ include "wiki-chart.prometheus.routePrefix" . }}
  pathType: Prefix
  backend:
    service:
      name: {{ include "wiki-chart.prometheus.fullname" . }}
      port:
        name: web
{{- end }}
{{- end }}

{{/*
Prometheus's --web.external-url: prometheus.externalUrl, else, when the Ingress exposes
Prometheus, the URL it is reached at there (https when TLS covers the first host; the
path alone when the Ingress has no host), so that the UI's links and redirects stay
under the prefix. Empty otherwise (Prometheus derives it).
*/}}
{{/*
Where users reach the release through the Ingress: "https://<host>" (or "http://" when
no TLS entry covers the host), from ingress.hosts' first host; empty when the Ingress
has no host (it then answers any) or is off.
*/}}
{{- define "wiki-chart.ingress.publicBase" -}}
{{- if .Values.ingress.enabled -}}
{{- with first (.Values.ingress.hosts | default (list "")) -}}
{{- $host := . -}}
{{- $tls := false -}}
{{- range $.Values.ingress.tls }}{{ if has $host (.hosts | default list) }}{{ $tls = true }}{{ end }}{{ end -}}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "wiki-chart.prometheus.externalUrl" -}}
{{- if .Values.prometheus.externalUrl -}}
{{- .Values.prometheus.externalUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.prometheus.enabled -}}
{{- printf "%s%s" (include "wiki-chart.ingress.publicBase" .) (include "wiki-chart.prometheus.routePrefix" .) -}}
{{- end -}}
{{- end -}}

{{/* Phase 11: postgres_exporter beside the chart's PostgreSQL ("true" or ""). */}}
{{- define "wiki-chart.postgresql.metricsEnabled" -}}
{{- if and (include "wiki-chart.database.builtin" .) .Values.postgresql.metrics.enabled -}}true{{- end -}}
{{- end -}}

{{/* Phase 11: the backup CronJob of the chart's PostgreSQL ("true" or ""). */}}
{{- define "wiki-chart.postgresql.backupEnabled" -}}
{{- if and (include "wiki-chart.database.builtin" .) .Values.postgresql.backup.enabled -}}true{{- end -}}
{{- end -}}

{{/* The ConfigMap with wiki-chart/postgresql/ (setup, backup and restore scripts, the exporter's query). */}}
{{- define "wiki-chart.postgresql.scriptsName" -}}
{{- printf "%s-scripts" (include "wiki-chart.postgresql.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The backups' volume claim: an existing one, or the chart's. */}}
{{- define "wiki-chart.postgresql.backupClaimName" -}}
{{- .Values.postgresql.backup.persistence.existingClaim | default (printf "%s-backups" (include "wiki-chart.postgresql.fullname" .)) -}}
{{- end -}}

{{/*
The age past which the last good backup counts as missing: alerting.postgresql.backupMaxAge,
else twice the interval of postgresql.backup.schedule (wiki-chart.scheduleMaxAge).
*/}}
{{- define "wiki-chart.postgresql.backupMaxAge" -}}
{{- include "wiki-chart.scheduleMaxAge" (dict "schedule" .Values.postgresql.backup.schedule "scheduleName" "postgresql.backup.schedule" "maxAge" .Values.alerting.postgresql.backupMaxAge "maxAgeName" "alerting.postgresql.backupMaxAge") -}}
{{- end -}}

{{/*
A backup schedule's maxAge, else twice its interval, read from its cron fields (with
withSeconds, CloudNativePG's format: its leading seconds field dropped): a fixed minute and any hour
(hourly), a fixed minute and every Nth hour (every N hours), a fixed minute and hour
(daily), the same on one day of the week (weekly), and the @hourly, @daily, @midnight
and @weekly shorthands. Any other schedule must set its maxAge: the chart refuses to guess.
Usage: include "wiki-chart.scheduleMaxAge" (dict "schedule" "30 2 * * *" "scheduleName" "postgresql.backup.schedule" "maxAge" "" "maxAgeName" "alerting.postgresql.backupMaxAge")
   or: include "wiki-chart.scheduleMaxAge" (dict "schedule" "0 30 2 * * *" "withSeconds" true ...)
*/}}
{{- define "wiki-chart.scheduleMaxAge" -}}
{{- $schedule := .schedule -}}
{{- $hours := 0 -}}
{{- $fields := splitList " " (regexReplaceAll "\\s+" (trim $schedule) " ") -}}
{{- if and .withSeconds (eq (len $fields) 6) -}}{{- $fields = rest $fields -}}{{- end -}}
{{- if eq $schedule "@hourly" -}}{{- $hours = 1 -}}
{{- else if has $schedule (list "@daily" "@midnight") -}}{{- $hours = 24 -}}
{{- else if eq $schedule "@weekly" -}}{{- $hours = 168 -}}
{{- else if eq (len $fields) 5 -}}
{{- $minute := index $fields 0 -}}{{- $hour := index $fields 1 -}}
{{- $rest := slice $fields 2 5 | join " " -}}
{{- if regexMatch "^[0-9]+$" $minute -}}
{{- if and (eq $hour "*") (eq $rest "* * *") -}}{{- $hours = 1 -}}
{{- else if and (regexMatch "^\\*/[0-9]+$" $hour) (eq $rest "* * *") -}}{{- $hours = trimPrefix "*/" $hour | int -}}
{{- else if and (regexMatch "^[0-9]+$" $hour) (eq $rest "* * *") -}}{{- $hours = 24 -}}
{{- else if and (regexMatch "^[0-9]+$" $hour) (regexMatch "^\\* \\* [0-7]$" $rest) -}}{{- $hours = 168 -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if .maxAge -}}
{{- .maxAge -}}
{{- else if gt (int $hours) 0 -}}
{{- printf "%dh" (mul $hours 2) -}}
{{- else -}}
{{- fail (printf "%s %q: the chart cannot tell its interval; set %s (e.g. 48h for a daily backup)" .scheduleName $schedule .maxAgeName) -}}
{{- end -}}
{{- end -}}

{{/*
Refuses a configuration whose connections could exceed PostgreSQL's max_connections:
every API pod at the busiest moment (autoscaling's maximum, or replicaCount, plus the
rolling update's extra pod) with a full pool, plus the exporter's and the backup's
connection limits (setup.sql sets them: 3 and 2), plus the connections PostgreSQL
keeps for superusers. A pool that cannot get a connection makes requests fail with 503.
*/}}
{{- define "wiki-chart.postgresql.checkConnections" -}}
{{- if (include "wiki-chart.database.builtin" .) -}}
{{- $config := .Values.postgresql.config -}}
{{- $pods := ternary .Values.api.autoscaling.maxReplicas .Values.api.replicaCount .Values.api.autoscaling.enabled | int -}}
{{- $surge := 1 -}}
{{- $api := mul (add $pods $surge) (int .Values.api.databasePoolSize) -}}
{{- $exporter := ternary 3 0 (eq (include "wiki-chart.postgresql.metricsEnabled" .) "true") -}}
{{- $backup := ternary 2 0 (eq (include "wiki-chart.postgresql.backupEnabled" .) "true") -}}
{{- $reserved := int (index $config "superuser_reserved_connections" | default 3) -}}
{{- $needed := add $api $exporter $backup $reserved -}}
{{- $max := int $config.max_connections -}}
{{- if gt (int $needed) $max -}}
{{- fail (printf "postgresql.config.max_connections is %d, but up to %d connections may be needed: %d API pods at the busiest (%d + 1 during a rolling update) x api.databasePoolSize %d = %d, + %d for the exporter, + %d for the backup, + %d reserved for superusers. Raise max_connections (and the memory it needs) or lower the pool size or the replicas." $max (int $needed) (add $pods $surge) $pods (int .Values.api.databasePoolSize) (int $api) (int $exporter) (int $backup) $reserved) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The bytes of a postgresql.conf memory setting: a number with PostgreSQL's unit (kB,
MB, GB, TB), or a bare number in the setting's own unit (8kB pages for shared_buffers,
kB for work_mem and the like), or -1.
Usage: include "wiki-chart.postgresql.memoryBytes" (dict "value" "128MB" "unit" 8192 "name" "shared_buffers")
*/}}
{{- define "wiki-chart.postgresql.memoryBytes" -}}
{{- $value := toString .value -}}
{{- $units := dict "kB" 1024 "MB" 1048576 "GB" 1073741824 "TB" 1099511627776 -}}
{{- $number := regexFind "^-?[0-9]+" $value -}}
{{- $unit := trimPrefix $number $value | trim -}}
{{- if or (eq $number "") (and $unit (not (hasKey $units $unit))) -}}
{{- fail (printf "postgresql.config.%s %q is not a PostgreSQL memory setting (e.g. 128MB, 4096kB)" .name $value) -}}
{{- end -}}
{{- if eq $number "-1" -}}-1
{{- else if $unit -}}{{- mul (int64 $number) (get $units $unit) -}}
{{- else -}}{{- mul (int64 $number) (int64 .unit) -}}
{{- end -}}
{{- end -}}

{{/*
Refuses postgresql.config settings whose memory can exceed the container's limit (a
container over its limit is killed: an outage for every API pod): shared_buffers, plus
every autovacuum worker at autovacuum_work_mem (or maintenance_work_mem when it is -1),
plus every connection of max_connections with one work_mem, plus 64MB for the rest
(the background processes, each connection's caches, the WAL buffers). An estimate
with the settings' worst case, as the connection check is: a query may use work_mem
more than once, and most connections sort nothing at all.
*/}}
{{- define "wiki-chart.postgresql.checkMemory" -}}
{{- $config := .Values.postgresql.config -}}
{{- $mb := 1048576 -}}
{{- $setting := dict "shared_buffers" (list "128MB" 8192) "work_mem" (list "4MB" 1024) "maintenance_work_mem" (list "64MB" 1024) "autovacuum_work_mem" (list "-1" 1024) -}}
{{- $bytes := dict -}}
{{- range $name, $default := $setting -}}
{{- $_ := set $bytes $name (include "wiki-chart.postgresql.memoryBytes" (dict "value" (index $config $name | default (index $default 0)) "unit" (index $default 1) "name" $name) | int64) -}}
{{- end -}}
{{- $autovacuumEach := ternary (get $bytes "maintenance_work_mem") (get $bytes "autovacuum_work_mem") (eq (get $bytes "autovacuum_work_mem" | int64) -1) | int64 -}}
{{- $workers := index $config "autovacuum_max_workers" | default 3 | int64 -}}
{{- $connections := int64 $config.max_connections -}}
{{- $needed := add (get $bytes "shared_buffers") (mul $workers $autovacuumEach) (mul $connections (get $bytes "work_mem")) (mul 64 $mb) -}}
{{- $limit := include "wiki-chart.quantityBytes" (dict "value" .Values.postgresql.resources.limits.memory "name" "postgresql.resources.limits.memory") | int64 -}}
{{- if gt (int64 $needed) $limit -}}
{{- fail (printf "postgresql.resources.limits.memory is %s, but PostgreSQL's settings may use up to %dMB: shared_buffers %dMB + %d autovacuum workers x %dMB + max_connections %d x work_mem %dkB + 64MB for the rest. Lower work_mem, maintenance_work_mem, shared_buffers or max_connections in postgresql.config, or raise the limit." .Values.postgresql.resources.limits.memory (div $needed $mb) (div (get $bytes "shared_buffers") $mb) $workers (div $autovacuumEach $mb) $connections (div (get $bytes "work_mem") 1024)) -}}
{{- end -}}
{{- end -}}

{{/*
Refuses a backups volume too small for postgresql.backup.keep dumps of a database that
fills its volume: each dump counted as 5% of the data volume (pg_dump's custom format
compresses, and leaves out indexes and the write-ahead log). A floor, not a forecast:
PostgresqlBackupVolumeNearlyFull watches the real sizes. Not checked for an
existingClaim, whose size the chart does not set.
*/}}
{{- define "wiki-chart.postgresql.checkBackupVolume" -}}
{{- if and (include "wiki-chart.postgresql.backupEnabled" .) (not .Values.postgresql.backup.persistence.existingClaim) -}}
{{- $backup := .Values.postgresql.backup -}}
{{- $data := include "wiki-chart.quantityBytes" (dict "value" .Values.postgresql.persistence.size "name" "postgresql.persistence.size") | float64 -}}
{{- $volume := include "wiki-chart.quantityBytes" (dict "value" $backup.persistence.size "name" "postgresql.backup.persistence.size") | float64 -}}
{{- $needed := mulf $data 0.05 (float64 $backup.keep) -}}
{{- if gt $needed $volume -}}
{{- fail (printf "postgresql.backup.persistence.size %s is too small for postgresql.backup.keep %d dumps of a database on a %s volume: give it at least %.1fGi (each dump counted as 5%% of the data volume), or lower keep" $backup.persistence.size (int $backup.keep) .Values.postgresql.persistence.size (divf $needed 1073741824.0)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
With postgresql.auth.existingSecret, refuses at install or upgrade a Secret that lacks
one of the keys the chart's roles need (a key added by a newer chart version, say),
naming it: PostgreSQL's setup would otherwise stop the database at its next start.
`lookup` sees the cluster only under `helm install` and `helm upgrade`; elsewhere
(`helm template`, Argo CD) the setup container says which key is missing.
*/}}
{{- define "wiki-chart.postgresql.checkExistingSecret" -}}
{{- $name := .Values.postgresql.auth.existingSecret -}}
{{- if and (include "wiki-chart.database.builtin" .) $name -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if $secret -}}
{{- $keys := list .Values.postgresql.auth.secretKey .Values.postgresql.auth.superuserSecretKey -}}
{{- if include "wiki-chart.postgresql.metricsEnabled" . }}{{ $keys = append $keys .Values.postgresql.metrics.secretKey }}{{ end -}}
{{- if include "wiki-chart.postgresql.backupEnabled" . }}{{ $keys = append $keys .Values.postgresql.backup.secretKey }}{{ end -}}
{{- range $keys -}}
{{- if not (hasKey ($secret.data | default dict) .) -}}
{{- fail (printf "the Secret %s (postgresql.auth.existingSecret) has no key %q, which PostgreSQL's setup needs: add it (kubectl patch secret -n %s %s --type merge -p '{\"stringData\":{\"%s\":\"<a password>\"}}') and upgrade again" $name . $.Release.Namespace $name .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Refuses role names that would break the chart's PostgreSQL. "postgres" is the
superuser, which setup.sql would strip of SUPERUSER (a 0.10 release that used it as
the API's user would be demoted on upgrade); names beginning with pg_ are PostgreSQL's
own; wiki_chart_setup is the setup script's. A role shared by two features would put
the exporter's (3) or the backup's (2) CONNECTION LIMIT on the API's role.
*/}}
{{- define "wiki-chart.postgresql.checkRoles" -}}
{{- if (include "wiki-chart.database.builtin" .) -}}
{{- $roles := list (list "postgresql.auth.username" .Values.postgresql.auth.username) -}}
{{- if include "wiki-chart.postgresql.metricsEnabled" . -}}
{{- $roles = append $roles (list "postgresql.metrics.username" .Values.postgresql.metrics.username) -}}
{{- end -}}
{{- if include "wiki-chart.postgresql.backupEnabled" . -}}
{{- $roles = append $roles (list "postgresql.backup.username" .Values.postgresql.backup.username) -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $roles -}}
{{- $key := index . 0 -}}
{{- $name := index . 1 -}}
{{- if or (eq $name "postgres") (hasPrefix "pg_" $name) (eq $name "wiki_chart_setup") -}}
{{- fail (printf "%s is %q, a name reserved in PostgreSQL or by the chart (postgres is the superuser, pg_* are PostgreSQL's, wiki_chart_setup is setup.sh's): choose another" $key $name) -}}
{{- end -}}
{{- with get $seen $name -}}
{{- fail (printf "%s and %s are both %q: each needs a role of its own (the exporter's and the backup's roles have connection limits the API's must not share)" . $key $name) -}}
{{- end -}}
{{- $_ := set $seen $name $key -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The pod template of the backup CronJob and of the restore Job: PostgreSQL's image, the
backups' volume, and one script of wiki-chart/postgresql/ run as one role.
Usage: include "wiki-chart.postgresql.backupPod" (dict "context" $ "script" "backup.sh" "user" "wiki_backup" "secretKey" "backup-password")
*/}}
{{- define "wiki-chart.postgresql.backupPod" -}}
{{- $ := .context -}}
{{- $values := $.Values.postgresql -}}
metadata:
  labels:
    {{- include "wiki-chart.podLabels" (dict "context" $ "component" "backup" "extra" $values.podLabels) | nindent 4 }}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  {{- with $.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    # The image's `postgres` user; fsGroup makes a fresh backups volume writable by it.
    runAsUser: 999
    runAsGroup: 999
    runAsNonRoot: true
    fsGroup: 999
    fsGroupChangePolicy: OnRootMismatch
    seccompProfile:
      type: RuntimeDefault
  {{- $store := $values.backup.objectStore }}
  {{- $copy := and (eq .script "backup.sh") $store.destinationPath }}
  {{- if $copy }}
  # rclone for backup.sh's copy to the object store: its one static binary, and the CA
  # certificates it checks the store's TLS with, from its own image.
  initContainers:
    - name: rclone
      image: {{ include "wiki-chart.image" $store.image | quote }}
      imagePullPolicy: {{ $store.image.pullPolicy }}
      command: ["cp", "/usr/local/bin/rclone", "/etc/ssl/certs/ca-certificates.crt", "/tools/"]
      securityContext:
        {{- include "wiki-chart.containerSecurityContext" $ | nindent 8 }}
      resources:
        {{- toYaml $values.backup.resources | nindent 8 }}
      volumeMounts:
        - name: tools
          mountPath: /tools
  {{- end }}
  containers:
    - name: {{ trimSuffix ".sh" .script }}
      image: {{ include "wiki-chart.image" $values.image | quote }}
      imagePullPolicy: {{ $values.image.pullPolicy }}
      command: ["bash", "/scripts/{{ .script }}"]
      securityContext:
        {{- include "wiki-chart.containerSecurityContext" $ | nindent 8 }}
      env:
        - name: PGHOST
          value: {{ include "wiki-chart.postgresql.fullname" $ | quote }}
        - name: PGPORT
          value: {{ $values.service.port | quote }}
        - name: PGDATABASE
          value: {{ $values.auth.database | quote }}
        - name: PGUSER
          value: {{ .user | quote }}
        - name: PGPASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "wiki-chart.database.secretName" $ }}
              key: {{ .secretKey }}
        - name: BACKUP_DIR
          value: /backups
        {{- if eq .script "backup.sh" }}
        - name: BACKUP_KEEP
          value: {{ $values.backup.keep | quote }}
        {{- if $copy }}
        # The object store, as rclone's remote "store" (backup.sh copies to it).
        - name: PATH
          value: /tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        - name: SSL_CERT_FILE
          value: /tools/ca-certificates.crt
        - name: RCLONE_CONFIG
          value: /tmp/rclone.conf
        - name: OBJECT_STORE_PATH
          value: {{ trimPrefix "s3://" $store.destinationPath | trimSuffix "/" | quote }}
        - name: RCLONE_CONFIG_STORE_TYPE
          value: s3
        - name: RCLONE_CONFIG_STORE_PROVIDER
          value: {{ ternary "Other" "AWS" (ne $store.endpointURL "") }}
        {{- with $store.endpointURL }}
        - name: RCLONE_CONFIG_STORE_ENDPOINT
          value: {{ . | quote }}
        {{- end }}
        {{- with $store.region }}
        - name: RCLONE_CONFIG_STORE_REGION
          value: {{ . | quote }}
        {{- end }}
        # The bucket exists already: no permission to create buckets is needed.
        - name: RCLONE_CONFIG_STORE_NO_CHECK_BUCKET
          value: "true"
        - name: RCLONE_CONFIG_STORE_ACCESS_KEY_ID
          valueFrom:
            secretKeyRef:
              name: {{ $store.credentialsSecret }}
              key: {{ $store.accessKeyIdKey }}
        - name: RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY
          valueFrom:
            secretKeyRef:
              name: {{ $store.credentialsSecret }}
              key: {{ $store.secretAccessKeyKey }}
        {{- end }}
        {{- else }}
        - name: RESTORE_FILE
          value: {{ $values.backup.restore.file | quote }}
        {{- end }}
      resources:
        {{- toYaml $values.backup.resources | nindent 8 }}
      volumeMounts:
        - name: backups
          mountPath: /backups
        - name: scripts
          mountPath: /scripts
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if $copy }}
        - name: tools
          mountPath: /tools
          readOnly: true
        {{- end }}
  volumes:
    {{- if $copy }}
    - name: tools
      emptyDir:
        # rclone's binary is about 70 MB.
        sizeLimit: 128Mi
    {{- end }}
    - name: backups
      persistentVolumeClaim:
        claimName: {{ include "wiki-chart.postgresql.backupClaimName" $ }}
    - name: scripts
      configMap:
        name: {{ include "wiki-chart.postgresql.scriptsName" $ }}
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
  # The backups' volume is ReadWriteOnce and PostgreSQL's pod mounts it (so that it is
  # bound at install): this pod runs on the same node, where the volume is attached.
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - labelSelector:
            matchLabels:
              {{- include "wiki-chart.selectorLabels" (dict "context" $ "component" "postgresql") | nindent 14 }}
          topologyKey: kubernetes.io/hostname
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/*
A Prometheus scrape job for one container port of one component's pods, found through
the Kubernetes API (pod discovery), one target per pod. The pods are the chart's own
component's, or those a label selector names (pods the CloudNativePG operator runs).
Usage: include "wiki-chart.prometheus.podScrapeJob" (dict "context" $ "job" "wiki-api" "component" "api" "container" "api" "port" "http")
   or: include "wiki-chart.prometheus.podScrapeJob" (dict "context" $ "job" "postgresql" "selector" "cnpg.io/cluster=db" "container" "postgres" "port" "metrics")
*/}}
{{- define "wiki-chart.prometheus.podScrapeJob" -}}
{{- $ := .context -}}
- job_name: {{ .job }}
  metrics_path: /metrics
  kubernetes_sd_configs:
    - role: pod
      # Only this release's namespace (the Role allows no other) ...
      namespaces:
        names: [{{ $.Release.Namespace | quote }}]
      # ... and only this component's pods, filtered by the API server.
      selectors:
        - role: pod
          label: {{ .selector | default (printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,app.kubernetes.io/component=%s" (include "wiki-chart.name" $) $.Release.Name .component) | quote }}
  relabel_configs:
    # One target per pod: the container's port named "{{ .port }}".
    - source_labels: [__meta_kubernetes_pod_container_name, __meta_kubernetes_pod_container_port_name]
      regex: {{ .container }};{{ .port }}
      action: keep
    # Pods that are not running have nothing to scrape.
    - source_labels: [__meta_kubernetes_pod_phase]
      regex: Running
      action: keep
    # Keep where each series came from.
    - source_labels: [__meta_kubernetes_namespace]
      target_label: namespace
    - source_labels: [__meta_kubernetes_pod_name]
      target_label: pod
{{- end -}}

{{/*
The label matchers that scope the API's and PostgreSQL's rules to this release's
series: the job name, and the release's namespace. The chart's own Prometheus sees
only this namespace anyway; a Prometheus shared by several releases (through the
PrometheusRule, alerting.prometheusRule) then evaluates each release's rules on its
own series, and each release's alerts and recorded series carry its namespace.
Usage: include "wiki-chart.rules.matchers" (dict "context" $ "job" "wiki-api")
*/}}
{{- define "wiki-chart.rules.matchers" -}}
job={{ .job | quote }}, namespace={{ .context.Release.Namespace | quote }}
{{- end -}}

{{/*
Refuses CloudNativePG settings that cannot work, each with what to change:
- a recovery from the Cluster's own name (it would restore over the folder it archives to);
- a synchronous quorum no standby set can meet (writes would wait forever with
  dataDurability required);
- more connections than max_connections: every API pod at the busiest moment with a
  full pool (or, with the Pooler, each PgBouncer's pool plus its auth_query
  connection), plus superuser_reserved_connections, which the operator's instance
  manager uses.
*/}}
{{- define "wiki-chart.cloudnativePg.check" -}}
{{- $values := .Values.cloudnativePg -}}
{{- $cluster := include "wiki-chart.cloudnativePg.clusterName" . -}}
{{- if eq $values.recovery.fromCluster $cluster -}}
{{- fail (printf "cloudnativePg.recovery.fromCluster is %q, this Cluster's own name: a recovery creates a new Cluster, so give cloudnativePg.clusterName a new name (e.g. %s-restored)" $cluster $cluster) -}}
{{- end -}}
{{- if and $values.recovery.targetTime (not $values.recovery.fromCluster) -}}
{{- fail "cloudnativePg.recovery.targetTime is set without cloudnativePg.recovery.fromCluster: name the Cluster whose backups to restore" -}}
{{- end -}}
{{- if ge (int $values.synchronous.number) (int $values.instances) -}}
{{- fail (printf "cloudnativePg.synchronous.number is %d, but %d instances have only %d standbys: lower it, or add instances" (int $values.synchronous.number) (int $values.instances) (sub (int $values.instances) 1)) -}}
{{- end -}}
{{- $parameters := $values.parameters -}}
{{- $max := int (index $parameters "max_connections" | default 100) -}}
{{- $reserved := int (index $parameters "superuser_reserved_connections" | default 3) -}}
{{- if $values.pooler.enabled -}}
{{- $poolSize := int (index $values.pooler.parameters "default_pool_size" | default 20) -}}
{{- $needed := add (mul (int $values.pooler.instances) (add $poolSize 1)) $reserved -}}
{{- if gt (int $needed) $max -}}
{{- fail (printf "cloudnativePg.parameters.max_connections is %d, but up to %d connections may be needed: %d PgBouncer pods x (default_pool_size %d + 1 for its auth_query), + %d reserved for superusers. Raise max_connections or lower the pool." $max (int $needed) (int $values.pooler.instances) $poolSize $reserved) -}}
{{- end -}}
{{- else -}}
{{- $pods := ternary .Values.api.autoscaling.maxReplicas .Values.api.replicaCount .Values.api.autoscaling.enabled | int -}}
{{- $api := mul (add $pods 1) (int .Values.api.databasePoolSize) -}}
{{- $needed := add $api $reserved -}}
{{- if gt (int $needed) $max -}}
{{- fail (printf "cloudnativePg.parameters.max_connections is %d, but up to %d connections may be needed: %d API pods at the busiest (%d + 1 during a rolling update) x api.databasePoolSize %d, + %d reserved for superusers. Raise max_connections, lower the pool size or the replicas, or turn on cloudnativePg.pooler." $max (int $needed) (add $pods 1) $pods (int .Values.api.databasePoolSize) $reserved) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A map of labels as a label selector string: "a=1,b=2", sorted by key. */}}
{{- define "wiki-chart.labelSelector" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
Where the CloudNativePG instances and the operator's jobs for them may connect: DNS
(the chart-wide policy selects only the chart's own pods), the Cluster's instances,
the Kubernetes API, and the object store (networkPolicy.objectStore). Numbers, never
ports' names, as in every egress rule (networkpolicy-grafana.yaml says why).
*/}}
{{- define "wiki-chart.cloudnativePg.instanceEgress" -}}
{{- $values := .Values.cloudnativePg -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
- to:
    - podSelector:
        matchLabels:
          {{- include "wiki-chart.cloudnativePg.instanceSelector" . | nindent 10 }}
  ports:
    - protocol: TCP
      port: 8000
    - protocol: TCP
      port: 5432
# The Kubernetes API: its address varies between clusters, so only its ports are known.
- ports:
    {{- range .Values.networkPolicy.kubernetesApiPorts }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- if or $values.backup.enabled $values.recovery.fromCluster }}
{{ include "wiki-chart.networkPolicy.objectStoreEgress" . }}
{{- end }}
{{- end -}}

{{/*
The egress rule to the object store where backups go (networkPolicy.objectStore): its
ports, in the peers named, or anywhere when none are (a cloud's S3 has no fixed
address). CloudNativePG's instances and the built-in backup pod both use it.
*/}}
{{- define "wiki-chart.networkPolicy.objectStoreEgress" -}}
# The object store (networkPolicy.objectStore).
- {{- with .Values.networkPolicy.objectStore.peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range .Values.networkPolicy.objectStore.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}
