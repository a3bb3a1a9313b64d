#!/usr/bin/env bash
# The differential suite: runs the kube-rs project's own `#[ignore]`d cluster tests — they ship in
# the sources of the kube 5 crates on crates.io — against the embedded API server, and prints one
# line per test (`ok`, `FAILED`) plus the totals. Not part of CI (it builds kube's test binaries, a
# few minutes on two cores); docs/embedded-apiserver.md keeps the last result.
#
#   bash tests/kube-rs-diff/run.sh            # all crates
#   bash tests/kube-rs-diff/run.sh kube-client
#
# Everything lives under target/kube-rs-diff: copies of the crate sources (their tests build in
# their own target directory, with their own lock file), the server's data directory and the logs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/kube-rs-diff
mkdir -p "$work"

crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(kube-client kube-runtime kube)
# What each crate's tests need; TLS through rustls + ring as the host uses it.
declare -A features=(
    [kube-client]="client,config,rustls-tls,ring,ws,jsonpatch,gzip,unstable-client"
    [kube-runtime]="kube-client/rustls-tls,kube-client/ring"
    [kube]="client,config,runtime,derive,rustls-tls,ring,ws,jsonpatch"
)

# Where cargo keeps the crates' sources (fetched as dependencies of this workspace).
manifest_of() {
    cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, sys
name = sys.argv[1]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == name and p["version"].startswith("5."):
        print(p["manifest_path"]); break' "$1"
}

cargo build -p wasmop --quiet
rm -rf "$work/data"
"$root/target/debug/wasmop" apiserver --data-dir "$work/data" --port 0 > "$work/apiserver.out" 2> "$work/apiserver.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q '^kubeconfig: ' "$work/apiserver.out" 2>/dev/null && break
    sleep 0.1
done
export KUBECONFIG=$(sed -n 's/^kubeconfig: //p' "$work/apiserver.out")
[ -n "$KUBECONFIG" ] || { echo "the API server did not start; see $work/apiserver.log" >&2; exit 1; }
echo "embedded API server up; KUBECONFIG=$KUBECONFIG"

results=$work/results.txt
: > "$results"
for crate in "${crates[@]}"; do
    manifest=$(manifest_of "$crate")
    [ -n "$manifest" ] || { echo "no $crate 5.x among this workspace's dependencies" >&2; exit 1; }
    src=$work/src/$crate
    rm -rf "$src" && mkdir -p "$src" && cp -r "$(dirname "$manifest")"/. "$src"/
    # Its own workspace, not a member of this one.
    printf '\n[workspace]\n' >> "$src/Cargo.toml"
    # Start from this workspace's lock file: the same versions the host builds with.
    cp "$root/Cargo.lock" "$src/Cargo.lock"
    # The newest webpki-roots in the lock cannot be fetched here; the one before it can.
    cargo update --quiet --manifest-path "$src/Cargo.toml" -p webpki-roots --precise 1.0.10 2>/dev/null || true
    # A few tests name the `kube` facade (a dev-dependency only inside kube-rs's own workspace)
    # for items it re-exports: use the paths the crate itself has (doc comments are left alone).
    case $crate in
        kube-client) facade=crate ;;
        kube-runtime) facade=kube_client ;;
        *) facade= ;;
    esac
    if [ -n "$facade" ]; then
        grep -rl --include='*.rs' -E '^\s*use kube::' "$src/src" | xargs -r sed -i -E "s/^(\s*)use kube::/\1use $facade::/"
    fi
    args=(--manifest-path "$src/Cargo.toml" --target-dir "$work/target" --lib)
    [ -n "${features[$crate]}" ] && args+=(--features "${features[$crate]}")
    echo "== $crate: building its tests"
    cargo test "${args[@]}" --no-run --quiet 2> "$work/$crate.build.log" || {
        echo "$crate: the tests do not build; see $work/$crate.build.log" >&2; exit 1; }
    echo "== $crate: running its ignored tests against the embedded server"
    cargo test "${args[@]}" -- --ignored --test-threads=1 2>&1 | tee "$work/$crate.log" \
        | grep -E '^test .* \.\.\. ' | sed "s/^test /$crate::/" | tee -a "$results" || true
done
echo
echo "$(grep -c ' ok$' "$results") passed, $(grep -c 'FAILED$' "$results") failed"
