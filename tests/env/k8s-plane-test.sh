#!/usr/bin/env bash
# Proves that a Kubernetes API server is real (not a mock) for what kvop relies on:
# CRD install, OpenAPI schema validation, CEL transition rules, the status subresource,
# watch, optimistic concurrency (409 Conflict) and RBAC for an unprivileged identity.
# Uses kubectl only, in a fresh uniquely named namespace which it leaves behind (there is
# no namespace controller to delete it) after deleting the objects it created.
#
# Usage: KUBECONFIG=admin.kubeconfig KVOP_LIMITED_KUBECONFIG=limited.kubeconfig \
#          tests/env/k8s-plane-test.sh CRD_DIR
# CRD_DIR holds the CRDs of group kvop.dev/v1alpha1 (KeyValueBucket/kvb, KeyValueEntry/kve).
# Output: one `ok - NAME` / `not ok - NAME` line per case (diagnostics prefixed `# `),
# then `N passed, N failed`. Exit status 1 if any case failed, 2 on bad usage.
# Env: KVOP_KUBECTL (default kubectl).
set -euo pipefail

KUBECTL="${KVOP_KUBECTL:-kubectl}"
GROUP=kvop.dev
VERSION=v1alpha1
KVB="keyvaluebuckets.${GROUP}"   # fully qualified: immune to other groups' short names
KVE="keyvalueentries.${GROUP}"
BUCKET=plane-test                # the valid KeyValueBucket most cases work on
READER=kvop-plane-reader         # Role/RoleBinding granted to the limited identity
LIMITED_USER=kvop-limited        # CN of the limited client certificate (k8s-up.sh)

PASSED=0
FAILED=0
NS=""
WORK=""
CRD_DIR=""

usage() {
    echo "usage: KUBECONFIG=... KVOP_LIMITED_KUBECONFIG=... $0 CRD_DIR" >&2
    exit 2
}

# Admin and limited kubectl. The request timeout keeps a wedged server from hanging
# the run; KUBECACHEDIR (set in main) gives a fresh discovery cache, so CRDs added a
# moment ago are always found.
k() { "$KUBECTL" --request-timeout=30s "$@"; }
kl() { "$KUBECTL" --kubeconfig="$KVOP_LIMITED_KUBECONFIG" --request-timeout=30s "$@"; }

# run_case NAME FUNCTION: runs FUNCTION in a subshell with its output captured; prints
# the TAP-like verdict and, on failure, the captured output as `# ` diagnostics.
run_case() {
    local name="$1" fn="$2" out
    if out="$("$fn" 2>&1)"; then
        echo "ok - $name"
        PASSED=$((PASSED + 1))
    else
        echo "not ok - $name"
        [[ -n "$out" ]] && printf '%s\n' "$out" | sed 's/^/# /'
        FAILED=$((FAILED + 1))
    fi
    return 0
}

# expect_failure PATTERN CMD...: CMD must fail and its output must match the
# (case-insensitive, extended) regular expression PATTERN.
expect_failure() {
    local pattern="$1" out
    shift
    if out="$("$@" 2>&1)"; then
        echo "expected failure, but succeeded: $*"
        echo "$out"
        return 1
    fi
    if ! grep -qiE -- "$pattern" <<<"$out"; then
        echo "failed as expected, but the output does not match /$pattern/: $*"
        echo "$out"
        return 1
    fi
}

# get_field NAME JSONPATH: one field of a KeyValueBucket in the test namespace.
get_field() {
    k get "$KVB" "$1" -n "$NS" -o "jsonpath=$2"
}

# expect_field NAME JSONPATH WANT
expect_field() {
    local got
    got="$(get_field "$1" "$2")" || return 1
    if [[ "$got" != "$3" ]]; then
        echo "$1 $2: got '$got', want '$3'"
        return 1
    fi
}

# bucket_manifest NAME HISTORY: a KeyValueBucket using only the spec fields kvop's CRD
# is known to have (bucket, history, storage, ttl).
bucket_manifest() {
    cat <<YAML
apiVersion: ${GROUP}/${VERSION}
kind: KeyValueBucket
metadata:
  name: $1
  namespace: ${NS}
spec:
  bucket: $1
  history: $2
  storage: file
  ttl: 1h
YAML
}

# wait_until SECONDS CMD...: retries CMD every 0.5 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        (( SECONDS < deadline )) || return 1
        sleep 0.5
    done
}

# --- cases -------------------------------------------------------------------------

case_create_namespace() {
    k create namespace "$NS"
}

case_apply_crds() {
    # --force-conflicts: the CRDs may already be owned by another field manager (an
    # earlier run of the operator or of this test); taking them over is intended.
    k apply --server-side --force-conflicts --field-manager=kvop-plane-test -f "$CRD_DIR" || return 1
    k wait --for condition=established --timeout=60s -f "$CRD_DIR" || return 1
    k get crd "$KVB" "$KVE" -o name || return 1
}

case_create_valid_bucket() {
    bucket_manifest "$BUCKET" 5 | k create -f - || return 1
    expect_field "$BUCKET" '{.spec.history}' 5 || return 1
    expect_field "$BUCKET" '{.spec.storage}' file || return 1
}

case_schema_rejects_history_100() {
    # history is 1..64 in the schema; the server must refuse, naming the field.
    expect_failure 'spec\.history' k create -f - < <(bucket_manifest plane-test-invalid 100) || return 1
    expect_failure 'NotFound|not found' k get "$KVB" plane-test-invalid -n "$NS" || return 1
}

case_cel_rejects_storage_change() {
    expect_failure 'immutable' \
        k patch "$KVB" "$BUCKET" -n "$NS" --type=merge -p '{"spec":{"storage":"memory"}}' || return 1
    expect_field "$BUCKET" '{.spec.storage}' file || return 1
}

# Prints "FIELD TYPE" for a status field this CRD's schema accepts a test value in,
# preferring observedGeneration, then any unconstrained string or integer property,
# then an arbitrary key when status preserves unknown fields. The real status fields
# are the other engineer's to choose; this keeps the case independent of them.
pick_status_field() {
    local tmpl
    tmpl='{{range .spec.versions}}{{if eq .name "'"$VERSION"'"}}{{with .schema.openAPIV3Schema.properties.status}}'
    tmpl+='{{range $k, $v := .properties}}{{$k}} {{$v.type}} {{if or $v.enum $v.format $v.pattern $v.minimum $v.maximum $v.minLength $v.maxLength}}constrained{{else}}free{{end}}{{"\n"}}{{end}}'
    tmpl+='{{if index . "x-kubernetes-preserve-unknown-fields"}}planeTest string preserve{{"\n"}}{{end}}'
    tmpl+='{{end}}{{end}}{{end}}'
    local fields
    fields="$(k get crd "$KVB" -o "go-template=$tmpl")" || return 1
    awk '$1 == "observedGeneration" && $2 == "integer" { print $1, $2; found = 1; exit }
         END { if (!found) exit 1 }' <<<"$fields" && return 0
    awk '($2 == "string" || $2 == "integer") && $3 != "constrained" { print $1, $2; found = 1; exit }
         END { if (!found) exit 1 }' <<<"$fields" && return 0
    echo "no status property usable for the test in the $KVB schema:" >&2
    echo "$fields" >&2
    return 1
}

# status_patch FIELD TYPE VALUE: a merge patch setting .status.FIELD.
status_patch() {
    if [[ "$2" == integer ]]; then
        printf '{"status":{"%s":%s}}' "$1" "$3"
    else
        printf '{"status":{"%s":"%s"}}' "$1" "$3"
    fi
}

case_status_subresource() {
    local field type generation
    read -r field type < <(pick_status_field) || return 1
    [[ -n "$field" ]] || return 1
    echo "using .status.$field ($type)"
    generation="$(get_field "$BUCKET" '{.metadata.generation}')" || return 1
    k patch "$KVB" "$BUCKET" -n "$NS" --subresource=status --type=merge \
        -p "$(status_patch "$field" "$type" 4242)" || return 1
    expect_field "$BUCKET" "{.status.$field}" 4242 || return 1
    # A status write is not a spec change: metadata.generation must not move.
    expect_field "$BUCKET" '{.metadata.generation}' "$generation" || return 1
}

case_main_resource_ignores_status() {
    local field type
    read -r field type < <(pick_status_field) || return 1
    # With the status subresource enabled, status sent to the main resource is dropped.
    k patch "$KVB" "$BUCKET" -n "$NS" --type=merge -p "$(status_patch "$field" "$type" 1717)" || return 1
    expect_field "$BUCKET" "{.status.$field}" 4242 || return 1
}

case_watch_sees_update() {
    local out="$WORK/watch.out" watcher rc=0
    # -w (not --watch-only) prints the current state first: once that line is there,
    # the watch is established from the listed resourceVersion and cannot miss the update.
    timeout 60 "$KUBECTL" get kvb "$BUCKET" -n "$NS" -w \
        -o 'jsonpath={.metadata.resourceVersion} {.spec.history}{"\n"}' >"$out" 2>"$WORK/watch.err" &
    watcher=$!
    if ! wait_until 20 test -s "$out"; then
        echo "the watch printed no initial state"
        rc=1
    elif ! k patch "$KVB" "$BUCKET" -n "$NS" --type=merge -p '{"spec":{"history":7}}'; then
        rc=1
    elif ! wait_until 20 grep -q ' 7$' "$out"; then
        echo "the watch did not see spec.history=7"
        rc=1
    fi
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    echo "watch output:"
    cat "$out" "$WORK/watch.err"
    return "$rc"
}

case_stale_update_conflicts() {
    local old="$WORK/stale.yaml" rv_before rv_after
    k get "$KVB" "$BUCKET" -n "$NS" -o yaml >"$old" || return 1
    rv_before="$(get_field "$BUCKET" '{.metadata.resourceVersion}')" || return 1
    k label "$KVB" "$BUCKET" -n "$NS" --overwrite plane-test-bump="$RANDOM" || return 1
    rv_after="$(get_field "$BUCKET" '{.metadata.resourceVersion}')" || return 1
    if [[ "$rv_before" == "$rv_after" ]]; then
        echo "resourceVersion did not change ($rv_before)"
        return 1
    fi
    # Replacing with the object as read before the label change carries the old
    # resourceVersion: the server must refuse with 409 Conflict.
    expect_failure 'Conflict|has been modified' k replace -f "$old" || return 1
}

case_limited_forbidden() {
    expect_failure "Forbidden.*User \"${LIMITED_USER}\"" kl get "$KVB" -n "$NS" || return 1
}

case_role_grants_limited() {
    k create role "$READER" -n "$NS" --verb=get,list --resource="$KVB" || return 1
    k create rolebinding "$READER" -n "$NS" --role="$READER" --user="$LIMITED_USER" || return 1
    # The RBAC authorizer reads Roles through informers: allow a moment to propagate.
    if ! wait_until 15 kl get "$KVB" -n "$NS"; then
        kl get "$KVB" -n "$NS"
        return 1
    fi
    kl get "$KVB" -n "$NS" -o name | grep -qx "keyvaluebucket.${GROUP}/${BUCKET}" || return 1
    kl get "$KVB" "$BUCKET" -n "$NS" -o name || return 1
}

case_grant_is_scoped() {
    expect_failure 'Forbidden' kl delete "$KVB" "$BUCKET" -n "$NS" || return 1
    expect_failure 'Forbidden' kl get "$KVB" -n default || return 1
}

# --- driver ------------------------------------------------------------------------

cleanup() {
    if [[ -n "$NS" ]]; then
        # No controller-manager: the namespace itself would never finish terminating,
        # so only its objects are removed. Errors here must not change the verdict.
        k delete "$KVB,$KVE" --all -n "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
        k delete rolebinding,role --all -n "$NS" --ignore-not-found >/dev/null 2>&1 || true
    fi
    [[ -n "$WORK" ]] && rm -rf "$WORK"
    return 0
}

main() {
    (( $# == 1 )) || usage
    CRD_DIR="$1"
    [[ -n "${KUBECONFIG:-}" && -f "${KUBECONFIG%%:*}" ]] || { echo "KUBECONFIG must name the admin kubeconfig" >&2; usage; }
    [[ -n "${KVOP_LIMITED_KUBECONFIG:-}" && -f "$KVOP_LIMITED_KUBECONFIG" ]] || { echo "KVOP_LIMITED_KUBECONFIG must name the limited kubeconfig" >&2; usage; }
    [[ -d "$CRD_DIR" || -f "$CRD_DIR" ]] || { echo "no CRDs at $CRD_DIR" >&2; usage; }
    command -v "$KUBECTL" >/dev/null || { echo "'$KUBECTL' not found" >&2; exit 2; }

    WORK="$(mktemp -d "${TMPDIR:-/tmp}/kvop-plane-test.XXXXXX")"
    export KUBECACHEDIR="$WORK/kube-cache"
    NS="kvop-plane-test-$(date +%s)-${RANDOM}"
    trap cleanup EXIT
    echo "# namespace $NS, CRDs from $CRD_DIR"

    run_case "create namespace" case_create_namespace
    run_case "apply CRDs server-side and wait until Established" case_apply_crds
    run_case "create a valid KeyValueBucket" case_create_valid_bucket
    run_case "schema validation rejects spec.history=100" case_schema_rejects_history_100
    run_case "CEL rule rejects changing spec.storage (immutable)" case_cel_rejects_storage_change
    run_case "patch the status subresource and read it back" case_status_subresource
    run_case "status sent to the main resource is ignored" case_main_resource_ignores_status
    run_case "watch (kubectl get kvb -w) sees an update" case_watch_sees_update
    run_case "stale resourceVersion update gets 409 Conflict" case_stale_update_conflicts
    run_case "unprivileged identity is Forbidden to list keyvaluebuckets" case_limited_forbidden
    run_case "Role+RoleBinding lets the unprivileged identity get/list" case_role_grants_limited
    run_case "the grant is scoped (no delete, no other namespace)" case_grant_is_scoped

    echo "${PASSED} passed, ${FAILED} failed"
    (( FAILED == 0 ))
}

main "$@"
