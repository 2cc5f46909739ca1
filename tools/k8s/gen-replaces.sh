#!/usr/bin/env bash
# Points this module at k8s.io/kubernetes $KUBERNETES_VERSION and replaces every staging module with
# its published twin (Kubernetes v1.X.Y <-> staging v0.X.Y). k/k's go.mod requires the staging modules
# at the non-existent v0.0.0 and redirects them to ./staging/src/...; replaces in a dependency are
# ignored, so the main module must supply them. The list is read from the go.mod of exactly that
# version, fetched through the module proxy, never maintained by hand. Run it after changing the version.
set -euo pipefail
cd "$(dirname "$0")"

KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.37.2}
staging_version="v0.${KUBERNETES_VERSION#v1.}"

download_json=$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}")
kk_gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$download_json")
if [[ ! -f "$kk_gomod" ]]; then
    echo "gen-replaces: no go.mod for k8s.io/kubernetes@${KUBERNETES_VERSION} in:" >&2
    echo "$download_json" >&2
    exit 1
fi

staging_modules=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\1#p' "$kk_gomod")
if [[ -z "$staging_modules" ]]; then
    echo "gen-replaces: found no './staging/src' replaces in $kk_gomod" >&2
    exit 1
fi

# Start from a clean slate so modules that left staging do not linger.
edits=()
for stale in $(go mod edit -json | sed -n 's#^[[:space:]]*"Path": "\(k8s\.io/[^"]*\)"$#\1#p' | sort -u); do
    edits+=("-dropreplace=${stale}")
done
edits+=("-require=k8s.io/kubernetes@${KUBERNETES_VERSION}")
for module in $staging_modules; do
    edits+=("-replace=${module}=${module}@${staging_version}")
done
go mod edit "${edits[@]}"
go mod tidy

echo "gen-replaces: k8s.io/kubernetes ${KUBERNETES_VERSION}, $(wc -w <<<"$staging_modules") staging modules => ${staging_version}"
