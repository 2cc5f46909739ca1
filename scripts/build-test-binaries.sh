#!/usr/bin/env bash
# Builds the test suite's control-plane binaries (kube-apiserver, etcd, helm) from the Go module proxy
# into $KUBENETMON_TOOLS_CACHE/<key>/ and points $KUBENETMON_TOOLS_CACHE/current at them.
#
# The key combines the versions, the Go toolchain and a hash of tools/ plus this script (the ldflags
# live here), so any change rebuilds and an unchanged tree returns at once. Needs only Go and the proxy.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
tools_dir="$repo_root/tools"
cache_root=${KUBENETMON_TOOLS_CACHE:-$HOME/.cache/kubenetmon-tools}

log() { printf 'build-test-binaries: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# Static binaries: they run on any Linux, and need no C toolchain on the build machine.
export CGO_ENABLED=0

command -v go >/dev/null || die "the Go toolchain is not on PATH; install Go >= 1.26 (see tools/k8s/go.mod)"

# The version a go.mod requires for one module, e.g. `required_version tools/k8s/go.mod k8s.io/kubernetes`.
required_version() {
    local version
    version=$(sed -n "s#^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}$2[[:space:]]\{1,\}\(v[^[:space:]]*\).*#\2#p" "$1" | head -n 1)
    [[ -n "$version" ]] || die "$1 does not require $2"
    printf '%s' "$version"
}

kubernetes_version=$(required_version "$tools_dir/k8s/go.mod" k8s.io/kubernetes)
etcd_version=$(required_version "$tools_dir/k8s/go.mod" go.etcd.io/etcd/server/v3)
helm_version=$(required_version "$tools_dir/helm/go.mod" helm.sh/helm/v3)
helm_client_go_version=$(required_version "$tools_dir/helm/go.mod" k8s.io/client-go)
go_version=$(go env GOVERSION)

tree_hash=$(
    cd "$repo_root" &&
        find tools -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print0 | sort -z |
        xargs -0 sha256sum | cat - scripts/build-test-binaries.sh | sha256sum | cut -c1-12
)
key="k8s-${kubernetes_version}_etcd-${etcd_version}_helm-${helm_version}_${go_version}_${tree_hash}"
target="$cache_root/$key"

mkdir -p "$cache_root"
# One build at a time per cache, even when several checkouts run `make test-binaries` together.
exec 9>"$cache_root/.lock"
flock 9

point_current_at_target() {
    ln -sfn "$key" "$cache_root/.current.tmp"
    mv -T "$cache_root/.current.tmp" "$cache_root/current"
}

if [[ -f "$target/.complete" ]]; then
    point_current_at_target
    log "up to date: $target"
    exit 0
fi

log "building into $target"
log "kube-apiserver ${kubernetes_version}, etcd ${etcd_version}, helm ${helm_version}, ${go_version}"
log "cold (empty Go build cache): ~10 min and ~2.3 GiB peak RSS on 2 cores; warm: under a minute"

staging="$cache_root/.build-$key-$$"
rm -rf "$staging"
mkdir -p "$staging"
trap 'rm -rf "$staging"' EXIT

build_flags=(-trimpath -buildvcs=false -mod=readonly)
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
minor=${kubernetes_version#v1.}
minor=${minor%%.*}
kube_version_flags=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_version_flags+=" -X $package.gitVersion=$kubernetes_version -X $package.gitMajor=1"
    kube_version_flags+=" -X $package.gitMinor=$minor -X $package.gitTreeState=clean"
    kube_version_flags+=" -X $package.buildDate=$build_date"
done
helm_kube_minor=${helm_client_go_version#v0.}
helm_kube_minor=${helm_kube_minor%%.*}
helm_version_flags=""
for package in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    helm_version_flags+=" -X $package.k8sVersionMajor=1 -X $package.k8sVersionMinor=$helm_kube_minor"
done
helm_version_flags+=" -X helm.sh/helm/v3/internal/version.version=$helm_version"
helm_version_flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"

# Runs a command, writing its peak RSS (the largest process in its tree) to $1 in GNU time's format.
# Debian images often lack /usr/bin/time, so fall back to getrusage(RUSAGE_CHILDREN) through python3.
run_measured() {
    local stats=$1
    shift
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -v -o "$stats" "$@"
    elif command -v python3 >/dev/null; then
        python3 -c '
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as stats:
    print("Maximum resident set size (kbytes):", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=stats)
sys.exit(code)' "$stats" "$@"
    else
        "$@"
    fi
}

# Runs one `go build`, reporting wall time, peak RSS and the binary size.
build() {
    local name=$1 module_dir=$2 package=$3 ldflags=$4
    local output="$staging/$name" stats="$staging/.time-$name"
    local command=(go build "${build_flags[@]}" -ldflags "-s -w$ldflags" -o "$output" "$package")
    log "go build $name (in tools/${module_dir##*/tools/})"
    local started=$SECONDS status=0
    (cd "$module_dir" && run_measured "$stats" "${command[@]}") || status=$?
    if ((status != 0)); then
        local shown
        printf -v shown '%q ' "${command[@]}"
        die "building $name failed (exit $status): cd $module_dir && CGO_ENABLED=0 $shown"
    fi
    local peak="n/a"
    if [[ -f "$stats" ]]; then
        peak="$(($(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$stats") / 1024)) MiB"
    fi
    log "built $name: $((SECONDS - started)) s wall, peak RSS $peak, $(($(stat -c %s "$output") / 1048576)) MiB"
}

build kube-apiserver "$tools_dir/k8s" ./cmd/kube-apiserver "$kube_version_flags"
build etcd "$tools_dir/k8s" ./cmd/etcd ""
build helm "$tools_dir/helm" helm.sh/helm/v3/cmd/helm "$helm_version_flags"

# A binary that builds but reports the wrong version would make every test lie about what it ran.
check_version() {
    local name=$1 expected=$2
    shift 2
    local reported
    reported=$("$staging/$name" "$@" 2>&1) || die "$name $* failed: $reported"
    [[ "$reported" == *"$expected"* ]] || die "$name $* reports '$reported', expected '$expected'"
    log "$name reports: $(head -n 1 <<<"$reported")"
}
check_version kube-apiserver "Kubernetes $kubernetes_version" --version
check_version etcd "etcd Version: ${etcd_version#v}" --version
check_version helm "$helm_version" version --short

cat >"$staging/versions.env" <<EOF
KUBERNETES_VERSION=$kubernetes_version
ETCD_VERSION=$etcd_version
HELM_VERSION=$helm_version
GO_VERSION=$go_version
EOF
rm -f "$staging"/.time-*
touch "$staging/.complete"
rm -rf "$target"
mv -T "$staging" "$target"
trap - EXIT
point_current_at_target
log "done: $cache_root/current -> $key"
