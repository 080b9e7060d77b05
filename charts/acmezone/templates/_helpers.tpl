{{/*
Object names are fixed, as in deploy/: the APIService v1alpha1.solver.acmezone.io and the CRDs
are cluster-wide, so a cluster has one acmezone installation, and its namespace is the
release's.
*/}}

{{/*
acmezone.labels renders an object's metadata labels, indented for metadata: its own (dict
"labels", e.g. the selector label) over commonLabels. Nothing, not even a blank line, when both
are empty, so the objects deploy/ renders without labels stay without them.
Usage, on the line after metadata.name or namespace:
  {{- include "acmezone.labels" (dict "ctx" $ "labels" (dict ...)) }}
*/}}
{{- define "acmezone.labels" -}}
{{- $labels := merge (dict) (get . "labels" | default dict) .ctx.Values.commonLabels -}}
{{- with $labels }}
  labels:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end }}

{{/*
acmezone.image is an image reference: repository:tag, the tag defaulting to the chart's
appVersion, with @digest when one is set.
Usage: include "acmezone.image" (dict "ctx" $ "image" .Values.controller.image)
*/}}
{{- define "acmezone.image" -}}
{{- .image.repository }}:{{ .image.tag | default .ctx.Chart.AppVersion }}
{{- with .image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
acmezone.nsSuffix is the suffix of name server number .'s variables in the settings ConfigMap:
none for the first (deploy/'s ACMEZONE_NAMESERVER and ACMEZONE_NAMESERVER_ADDRESS), _2, _3, ...
for the others.
*/}}
{{- define "acmezone.nsSuffix" -}}
{{- if gt (int .) 0 }}_{{ add1 . }}{{ end }}
{{- end }}

{{/*
acmezone.settings is the data of the ConfigMap acmezone-settings: the zone and its name servers,
which CoreDNS reads in its Corefile ({$ACMEZONE_ZONE}) and acmezone-controller in its arguments
($(ACMEZONE_ZONE)). The pod templates carry its checksum, so a change rolls both Deployments
(deploy/ rolls them by a hash in the ConfigMap's name instead).
*/}}
{{- define "acmezone.settings" -}}
ACMEZONE_ZONE: {{ .Values.zone | quote }}
{{- range $i, $ns := .Values.nameservers }}
{{- $s := include "acmezone.nsSuffix" $i }}
ACMEZONE_NAMESERVER{{ $s }}: {{ $ns.name | quote }}
ACMEZONE_NAMESERVER_ADDRESS{{ $s }}: {{ $ns.address | quote }}
{{- end }}
{{- end }}

{{/*
acmezone.podTemplateMetadata renders a pod template's metadata: the selector label, podLabels,
the settings' checksum and podAnnotations.
Usage: include "acmezone.podTemplateMetadata" (dict "ctx" $ "name" "acmezone-controller" "values" .Values.controller) | nindent 4
*/}}
{{- define "acmezone.podTemplateMetadata" -}}
metadata:
  labels:
    {{- toYaml (merge (dict "app.kubernetes.io/name" .name) .values.podLabels) | nindent 4 }}
  annotations:
    checksum/settings: {{ include "acmezone.settings" .ctx | sha256sum }}
    {{- with .values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
acmezone.podScheduling renders a pod spec's scheduling fields: topology spread (deploy/'s two
constraints and the extra ones), nodeSelector, tolerations, affinity, priorityClassName and
imagePullSecrets.
Usage: with include "acmezone.podScheduling" (dict "ctx" $ "name" "acmezone-controller" "values" .Values.controller) | trim | nindent 6
*/}}
{{- define "acmezone.podScheduling" -}}
{{- $selector := dict "matchLabels" (dict "app.kubernetes.io/name" .name) }}
{{- $constraints := list }}
{{- if .values.topologySpread.enabled }}
{{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
{{- $constraints = append $constraints (dict "maxSkew" 1 "topologyKey" . "whenUnsatisfiable" $.values.topologySpread.whenUnsatisfiable "labelSelector" $selector) }}
{{- end }}
{{- end }}
{{- range .values.extraTopologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not (get $c "labelSelector") }}
{{- $_ := set $c "labelSelector" $selector }}
{{- end }}
{{- $constraints = append $constraints $c }}
{{- end }}
{{- with $constraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
acmezone.pdbSpec is a PodDisruptionBudget's spec: maxUnavailable when set, else minAvailable.
*/}}
{{- define "acmezone.pdbSpec" -}}
{{- if ne (toString .values.podDisruptionBudget.maxUnavailable) "" }}
maxUnavailable: {{ .values.podDisruptionBudget.maxUnavailable }}
{{- else }}
minAvailable: {{ .values.podDisruptionBudget.minAvailable }}
{{- end }}
selector:
  matchLabels: {app.kubernetes.io/name: {{ .name }}}
{{- end }}

{{/*
acmezone.acmeDNSServerURL is the URL written into Kubernetes-native acme-dns accounts.
*/}}
{{- define "acmezone.acmeDNSServerURL" -}}
{{- if .Values.acmeDNS.serverURL }}
{{- .Values.acmeDNS.serverURL }}
{{- else }}
{{- ternary "https" "http" (ne .Values.acmeDNS.tls.secretName "") }}://acmezone-controller.{{ .Release.Namespace }}.svc:8053
{{- end }}
{{- end }}

{{/*
acmezone.validate stops the render, saying what to set, where a value is wrong in a way the
schema cannot say clearly.
*/}}
{{- define "acmezone.validate" -}}
{{- if and .Values.acmeDNS.externalService.enabled (not .Values.acmeDNS.enabled) }}
{{- fail "acmeDNS.externalService.enabled is true but acmeDNS.enabled is false: there is no acme-dns API to expose. Set acmeDNS.enabled=true or acmeDNS.externalService.enabled=false." }}
{{- end }}
{{- if and .Values.acmeDNS.externalService.enabled (not .Values.acmeDNS.tls.secretName) }}
{{- fail "acmeDNS.externalService.enabled is true but acmeDNS.tls.secretName is empty: the acme-dns API would be plain HTTP outside the cluster, passwords in the clear. Set acmeDNS.tls.secretName to a kubernetes.io/tls Secret, or acmeDNS.externalService.enabled=false." }}
{{- end }}
{{- if and .Values.acmeDNS.trustedHeader (not .Values.acmeDNS.trustedProxies) }}
{{- fail "acmeDNS.trustedHeader is set but acmeDNS.trustedProxies is empty: the header would be believed from nobody. Set acmeDNS.trustedProxies to your reverse proxies' CIDRs." }}
{{- end }}
{{- $names := dict }}
{{- range $i, $ns := .Values.nameservers }}
{{- if hasKey $names (lower $ns.name) }}
{{- fail (printf "nameservers[%d].name %q is listed twice: give each name server once." $i $ns.name) }}
{{- end }}
{{- $_ := set $names (lower $ns.name) true }}
{{- end }}
{{- end }}
