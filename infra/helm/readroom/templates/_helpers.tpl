{{/* Names, labels and shared pieces of the readroom chart. */}}

{{- define "readroom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "readroom.fullname" -}}
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

{{- define "readroom.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "readroom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: readroom
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "server") */}}
{{- define "readroom.selector" -}}
app.kubernetes.io/name: {{ include "readroom.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "readroom.componentLabels" -}}
{{ include "readroom.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* image reference: repository:tag or repository@digest */}}
{{- define "readroom.image" -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end -}}

{{- define "readroom.serverServiceAccount" -}}
{{- if .Values.server.serviceAccount.create -}}
{{ default (printf "%s-server" (include "readroom.fullname" .)) .Values.server.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.server.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{- define "readroom.workerServiceAccount" -}}
{{- if .Values.worker.serviceAccount.create -}}
{{ default (printf "%s-worker" (include "readroom.fullname" .)) .Values.worker.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.worker.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{/* The worker's termination grace: preStop sleep + drain + margin, never below the first two. */}}
{{- define "readroom.workerGrace" -}}
{{- $floor := add .Values.worker.preStopSleepSeconds .Values.worker.drainSecs -}}
{{- if kindIs "invalid" .Values.worker.terminationGracePeriodSeconds -}}
{{- add $floor .Values.worker.terminationGraceMarginSeconds -}}
{{- else -}}
{{- if lt (int .Values.worker.terminationGracePeriodSeconds) (int $floor) -}}
{{- fail (printf "worker.terminationGracePeriodSeconds (%v) must be at least preStopSleepSeconds + drainSecs (%v), or sessions are killed mid-drain" .Values.worker.terminationGracePeriodSeconds $floor) -}}
{{- end -}}
{{- .Values.worker.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
The key-copy init container and its volumes. readroom refuses a key file readable by group or
others (mode & 077); Kubernetes Secret files are root-owned, so a non-root process reads them
only through the pod's fsGroup, which makes them 0440. The init container (GNU install, no
shell) copies them into a memory-backed emptyDir with mode 0600, owned by 10001; the main
container mounts that directory read-only and never sees the Secret volume.
(dict "ctx" $ "keys" .Values.keys.worker "files" (list "worker.age" "worker-control.key"))
*/}}
{{- define "readroom.keyinit" -}}
- name: keys
  image: {{ include "readroom.image" .ctx.Values.images.keyinit }}
  imagePullPolicy: {{ .ctx.Values.images.keyinit.pullPolicy }}
  command:
    - /usr/local/bin/install
    - -m
    - "0600"
    - -t
    - /run/readroom/keys
    {{- range .files }}
    - /run/readroom/secret/{{ . }}
    {{- end }}
  securityContext:
    {{- toYaml .ctx.Values.containerSecurityContext | nindent 4 }}
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      cpu: 100m
      memory: 32Mi
  volumeMounts:
    - name: key-source
      mountPath: /run/readroom/secret
      readOnly: true
    - name: keys
      mountPath: /run/readroom/keys
{{- end -}}

{{- define "readroom.keyVolumes" -}}
{{- if eq .keys.source "csi" }}
{{- /* The CSI driver's files are not root:fsGroup 0440 (readroom's rule for a key file, see
  domain/src/key_file.rs): the keyinit container copies them into this memory-backed
  directory with mode 0600. */}}
- name: keys
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
- name: key-source
  csi:
    driver: secrets-store.csi.k8s.io
    readOnly: true
    volumeAttributes:
      secretProviderClass: {{ required "keys.*.secretProviderClass is required with source=csi" .keys.secretProviderClass | quote }}
{{- else }}
{{- /* A Secret is mounted as it is: kubelet makes its files root-owned, of the pod's fsGroup,
  mode 0440, which readroom accepts for a key (root-owned, readable by its group only). */}}
- name: keys
  secret:
    secretName: {{ .keys.secretName }}
    defaultMode: 0440
    items:
      {{- range .files }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* TOML pieces shared by both configs. */}}
{{- define "readroom.tomlStore" -}}
[store]
kind = "s3"
[store.s3]
bucket = {{ required "config.store.bucket is required" .Values.config.store.bucket | toJson }}
region = {{ .Values.config.store.region | toJson }}
endpoint = {{ .Values.config.store.endpoint | toJson }}
force_path_style = {{ .Values.config.store.forcePathStyle }}
part_size_mib = {{ int .Values.config.store.partSizeMib }}
checkpoint_bucket = {{ .Values.config.store.checkpointBucket | default "" | toJson }}
{{- end -}}

{{- define "readroom.tomlIceServers" -}}
{{- $servers := .Values.config.stream.iceServers -}}
{{- range $servers }}
[[stream.ice_servers]]
urls = {{ .urls | toJson }}
{{- with .username }}
username = {{ . | toJson }}
{{- end }}
{{- with .credential }}
credential = {{ . | toJson }}
{{- end }}
{{- end }}
{{- if .Values.coturn.enabled }}
{{- /* STUN needs no credentials; the turn:/turns: URLs go to [stream.turn] (servers only),
       which mints short-lived credentials: a turn: URL without them is refused by browsers
       (InvalidAccessError) and by the workers' WebRTC stack. */}}
[[stream.ice_servers]]
urls = [{{ printf "stun:%s:%d" .Values.coturn.host (int .Values.coturn.port) | toJson }}]
{{- end }}
{{- end -}}

{{/* The servers' [stream.turn] table: the chart's coturn with the REST API shared secret,
     mounted from coturn.authSecret. */}}
{{- define "readroom.tomlTurn" -}}
{{- if .Values.coturn.enabled }}
[stream.turn]
urls = {{ include "readroom.turnUrls" . }}
shared_secret_file = {{ printf "/run/readroom/turn/%s" .Values.coturn.authSecret.key | toJson }}
ttl_secs = {{ int .Values.coturn.credentialTtlSecs }}
{{- end }}
{{- end -}}

{{- define "readroom.turnUrls" -}}
{{- $urls := list (printf "turn:%s:%d?transport=udp" .Values.coturn.host (int .Values.coturn.port)) (printf "turn:%s:%d?transport=tcp" .Values.coturn.host (int .Values.coturn.port)) -}}
{{- if and .Values.coturn.tlsPort .Values.coturn.tlsSecretName -}}
{{- if .Values.coturn.loadBalancer.enabled -}}
{{- $urls = append $urls (printf "turns:%s:%d?transport=tcp" (required "coturn.loadBalancer.host is required with coturn.loadBalancer.enabled" .Values.coturn.loadBalancer.host) (int .Values.coturn.loadBalancer.port)) -}}
{{- else -}}
{{- $urls = append $urls (printf "turns:%s:%d?transport=tcp" .Values.coturn.host (int .Values.coturn.tlsPort)) -}}
{{- end -}}
{{- end -}}
{{- $urls | toJson -}}
{{- end -}}

{{/* Volumes and mounts for S3 credentials given as a shared credentials file. */}}
{{- define "readroom.s3CredentialsVolume" -}}
{{- if .Values.config.store.credentialsSecret }}
- name: s3-credentials
  secret:
    secretName: {{ .Values.config.store.credentialsSecret }}
    defaultMode: 0440
    items:
      - key: credentials
        path: credentials
{{- end }}
{{- end -}}

{{- define "readroom.s3CredentialsMount" -}}
{{- if .Values.config.store.credentialsSecret }}
- name: s3-credentials
  mountPath: /run/readroom/aws
  readOnly: true
{{- end }}
{{- end -}}

{{- define "readroom.s3CredentialsEnv" -}}
{{- if .Values.config.store.credentialsSecret }}
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /run/readroom/aws/credentials
{{- end }}
{{- end -}}
