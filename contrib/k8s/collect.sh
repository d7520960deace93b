#!/bin/sh
# Save the report each tritondoctor pod printed as DIR/NODE.json, for `tritondoctor fleet merge DIR`.
#
#   contrib/k8s/collect.sh SELECTOR CONTAINER DIR     e.g.
#   contrib/k8s/collect.sh app.kubernetes.io/name=tritondoctor report fleet/    (daemonset.yaml)
#   contrib/k8s/collect.sh job-name=tritondoctor-check check fleet/             (job.yaml)
#
# A pod that is not scheduled, or whose log cannot be read, gets an {"error": ...} record, so the
# merge reports it instead of dropping it. KUBECTL (default: kubectl) may add flags: -n NAMESPACE...
set -u
[ $# -eq 3 ] || { echo "usage: $0 SELECTOR CONTAINER DIR" >&2; exit 2; }
selector=$1 container=$2 dir=$3
kubectl=${KUBECTL:-kubectl}
mkdir -p "$dir" || exit 2

error_record() {  # NAME MESSAGE
    printf '{"host": {"name": "%s", "node_id": "%s"}, "error": "%s"}\n' "$1" "$1" "$(printf '%s' "$2" | tr -d '"\\')"
}

pods=$($kubectl get pods -l "$selector" -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}') || exit 2
[ -n "$pods" ] || { echo "$0: no pods match $selector" >&2; exit 2; }
echo "$pods" | while read -r pod node; do
    [ -n "$pod" ] || continue
    if [ -z "$node" ]; then
        error_record "$pod" "pod $pod is not scheduled on any node" >"$dir/$pod.json"
    elif ! $kubectl logs "$pod" -c "$container" >"$dir/$node.json" 2>"$dir/$node.err"; then
        error_record "$node" "no log from pod $pod: $(tail -n 1 "$dir/$node.err")" >"$dir/$node.json"
    fi
    rm -f "$dir/$node.err"
done
