#!/usr/bin/env bash
# deploy/check-image.sh: starts the wasmop image the way a kubelet would and checks that it
# reconciles. Without a container runtime: the image is exported to a root filesystem (podman create
# + export) and run with `unshare` + `chroot` as UID/GID 65532, with the root filesystem read-only,
# the service-account token, CA and namespace at /var/run/secrets/kubernetes.io/serviceaccount,
# KUBERNETES_SERVICE_HOST/PORT set, an empty environment otherwise, the plugins mounted read-only in
# a ConfigMap's layout (`..<timestamp>/pdb-guard.wasm`, `..data` -> it, `pdb-guard.wasm` ->
# `..data/pdb-guard.wasm`) and a writable /cache (the pod's emptyDir). The API server is the embedded
# one over TLS (`wasmop apiserver`, the same static binary taken from the image). The check: a
# 3-replica Deployment gets a PodDisruptionBudget from pdb-guard, and the compiled plugin lands in
# /cache and nowhere else.
#
#   deploy/check-image.sh                 # builds the image first when it is missing
#   WASMOP_IMAGE=wasmop:dev WASMOP_CHECK_PLUGIN=path/to/pdb-guard.wasm deploy/check-image.sh
#   WASMOP_CHECK_RBAC=my-rbac.yaml deploy/check-image.sh    # another `wasmop rbac` output
#
# Needs root (mount namespaces, chroot) and kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

image=${WASMOP_IMAGE:-wasmop:dev}
plugin=${WASMOP_CHECK_PLUGIN:-target/wasm-plugins/plugins/pdb-guard.wasm}
rbac_yaml=${WASMOP_CHECK_RBAC:-deploy/rbac.yaml}
uid=65532

command -v kubectl >/dev/null || { echo "check-image: kubectl is required" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "check-image: run as root (unshare --mount, chroot)" >&2; exit 1; }
command -v podman >/dev/null && podman image exists "$image" || deploy/build-image.sh
if [ ! -f "$plugin" ]; then
  # The example plugins' build (wasm32-wasip2) puts the components in target/wasm-plugins/plugins.
  cargo build -p wasmop-example-plugins
fi

work=$(mktemp -d)
apiserver_pid= host_pid= container=
cleanup() {
  set +e
  # SIGKILL: unshare (--kill-child) then kills the host.
  [ -n "$host_pid" ] && kill -KILL "$host_pid" 2>/dev/null && wait "$host_pid" 2>/dev/null
  [ -n "$apiserver_pid" ] && kill "$apiserver_pid" 2>/dev/null && wait "$apiserver_pid" 2>/dev/null
  [ -n "$container" ] && podman rm -f "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "check-image: FAILED: $*" >&2
  echo "--- host log" >&2; tail -n 40 "$work/host.log" >&2 || true
  echo "--- apiserver log" >&2; tail -n 20 "$work/apiserver.log" >&2 || true
  exit 1
}

# The image's root filesystem.
rootfs="$work/rootfs"
mkdir -p "$rootfs"
container=$(podman create "$image")
podman export "$container" | tar -x -C "$rootfs"
podman rm -f "$container" >/dev/null
container=
# Mount points a kubelet would create (the container runtime does, on top of the image).
mkdir -p "$rootfs/var/run/secrets/kubernetes.io/serviceaccount" "$rootfs/plugins" "$rootfs/cache"

# The embedded API server, over TLS on 127.0.0.1 (its certificate covers 127.0.0.1).
# With RBAC enforced when the server supports it: the host then runs as the ServiceAccount
# `wasmop-system/wasmop` with the generated deploy/rbac.yaml and nothing more.
rbac=
"$rootfs/wasmop" apiserver --help | grep -q -- '--rbac' && rbac=--rbac
"$rootfs/wasmop" apiserver --data-dir "$work/api" --port 0 $rbac >"$work/apiserver.log" 2>&1 &
apiserver_pid=$!
for _ in $(seq 100); do
  grep -q '^wasmop API server listening on ' "$work/apiserver.log" && break
  kill -0 "$apiserver_pid" 2>/dev/null || fail "the API server exited"
  sleep 0.1
done
url=$(sed -n 's/^wasmop API server listening on //p' "$work/apiserver.log" | head -n1)
[ -n "$url" ] || fail "the API server did not start"
port=${url##*:}
export KUBECONFIG="$work/api/kubeconfig"

# The host's namespace, ServiceAccount and generated RBAC, as deploy/ installs them.
kubectl apply --server-side -f deploy/namespace.yaml -f deploy/serviceaccount.yaml -f "$rbac_yaml" >/dev/null

# The service-account mount: token, CA, namespace (as the kubelet's projected volume, world-readable
# files in a directory the container cannot write). The token is the ServiceAccount's (TokenRequest)
# under RBAC, else the admin token.
sa="$work/serviceaccount"
mkdir -p "$sa"
if [ -n "$rbac" ]; then
  kubectl -n wasmop-system create token wasmop --duration=1h >"$sa/token"
  echo "check-image: RBAC enforced, the host runs as system:serviceaccount:wasmop-system:wasmop"
else
  cp "$work/api/token" "$sa/token"
  echo "check-image: this API server does not enforce RBAC; the host runs with the admin token"
fi
cp "$work/api/tls/tls.crt" "$sa/ca.crt"
printf wasmop-system >"$sa/namespace"
chmod 0644 "$sa"/*

# The plugins, in the layout of a mounted ConfigMap (kubelet's atomic writer).
plugins="$work/plugins"
stamp="..2024_01_01_00_00_00.000000001"
mkdir -p "$plugins/$stamp"
cp "$plugin" "$plugins/$stamp/pdb-guard.wasm"
chmod 0644 "$plugins/$stamp/pdb-guard.wasm"
ln -s "$stamp" "$plugins/..data"
ln -s ..data/pdb-guard.wasm "$plugins/pdb-guard.wasm"

# The emptyDir for compiled plugins, as the kubelet makes it: owned by root, group the pod's
# fsGroup, world-writable (0777 plus setgid); the host keeps its cache in /cache/wasmop, its own.
cache="$work/cache"
mkdir -p "$cache"
chown "0:$uid" "$cache"
chmod 2777 "$cache"

# The objects pdb-guard reconciles.
kubectl create namespace demo >/dev/null
kubectl -n demo create deployment web --image=registry.k8s.io/pause:3.10 --replicas=3 >/dev/null

status_port=$(( (port % 20000) + 30000 ))
# As the Deployment runs it: with leader election, when this build has it.
leader_elect=
"$rootfs/wasmop" run --help | grep -q -- '--leader-elect' && leader_elect=--leader-elect
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare --mount --pid --fork --kill-child sh -c '
  set -e
  rootfs=$1; sa=$2; plugins=$3; cache=$4; uid=$5; status_port=$6; leader_elect=$7; shift 7
  mount --bind "$rootfs" "$rootfs"
  mount -o remount,bind,ro "$rootfs"
  mount --bind "$sa" "$rootfs/var/run/secrets/kubernetes.io/serviceaccount"
  mount -o remount,bind,ro "$rootfs/var/run/secrets/kubernetes.io/serviceaccount"
  mount --bind "$plugins" "$rootfs/plugins"
  mount -o remount,bind,ro "$rootfs/plugins"
  mount --bind "$cache" "$rootfs/cache"
  chroot=$(command -v chroot)
  exec env -i "$@" "$chroot" --userspec="$uid:$uid" "$rootfs" /wasmop run \
    --plugins=/plugins --cache-dir=/cache/wasmop --status-addr="127.0.0.1:$status_port" $leader_elect
' check "$rootfs" "$sa" "$plugins" "$cache" "$uid" "$status_port" "$leader_elect" \
  KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$port" POD_NAME=wasmop-check \
  WASMOP_LOG=info >"$work/host.log" 2>&1 &
host_pid=$!

# pdb-guard's answer: a PodDisruptionBudget for the Deployment.
pdb=
for _ in $(seq 600); do
  kill -0 "$host_pid" 2>/dev/null || fail "the host exited"
  pdb=$(kubectl -n demo get poddisruptionbudgets -o name 2>/dev/null || true)
  [ -n "$pdb" ] && break
  sleep 0.2
done
[ -n "$pdb" ] || fail "no PodDisruptionBudget in namespace demo within 120s"
echo "check-image: the image reconciled: $pdb"
kubectl -n demo get "$pdb" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{"\n"}'

# Leader election: this replica holds the Lease the generated Role covers.
if [ -n "$leader_elect" ]; then
  holder=$(kubectl -n wasmop-system get lease wasmop -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  [ "$holder" = wasmop-check ] || fail "the Lease wasmop-system/wasmop is held by '$holder', not wasmop-check"
  echo "check-image: leader election: the Lease is held by $holder"
fi
# The generated RBAC was enough: nothing was forbidden.
if grep -qi 'forbidden' "$work/host.log"; then fail "the host was refused something (403)"; fi

# Compiled plugins went to /cache/wasmop, as the pod's user, private to it (0700, key 0600).
[ -n "$(find "$cache/wasmop" -name '*.cwasm' -type f -print -quit)" ] || fail "nothing was cached in /cache/wasmop"
[ -z "$(find "$cache" -mindepth 1 ! -user "$uid" -print -quit)" ] || fail "files in /cache not owned by $uid"
# Permission bits only: the directory inherits the emptyDir's setgid bit (2700), which opens nothing.
perms() { printf '%03o' $(( 0$(stat -c %a "$1") & 0777 )); }
[ "$(perms "$cache/wasmop")" = 700 ] || fail "/cache/wasmop is not mode 0700 ($(stat -c %a "$cache/wasmop"))"
[ "$(perms "$cache/wasmop/key")" = 600 ] || fail "/cache/wasmop/key is not mode 0600 ($(stat -c %a "$cache/wasmop/key"))"
"$rootfs/wasmop" plugins --status-addr "127.0.0.1:$status_port" || fail "the status endpoint did not answer"

# A kubelet stops a container with SIGTERM: the host (the child of unshare) exits 0 within the
# grace period.
host=$(cat "/proc/$host_pid/task/$host_pid/children" 2>/dev/null || pgrep -P "$host_pid")
kill -TERM ${host:?the host process}
for _ in $(seq 150); do kill -0 "$host_pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$host_pid" 2>/dev/null && fail "the host did not stop within 30s of SIGTERM"
rc=0; wait "$host_pid" || rc=$?
host_pid=
[ "$rc" -eq 0 ] || fail "the host exited with $rc on SIGTERM"
echo "check-image: the host stopped on SIGTERM"

echo "check-image: ok in $(( $(date +%s) - start ))s"
