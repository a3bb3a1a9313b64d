#!/usr/bin/env bash
# deploy/build-image.sh: builds the wasmop host image on this machine, without a Docker daemon and
# without pulling anything: a static musl `wasmop` (release, `--no-default-features`, so without the
# example plugins) copied into a `FROM scratch` image (deploy/Containerfile) with podman. Installs
# what it needs when missing (podman and musl-tools from apt, the musl target from rustup).
#
#   deploy/build-image.sh            # image wasmop:dev
#   WASMOP_IMAGE=registry.example.com/wasmop:0.1.0 deploy/build-image.sh
#
# Prints the image name and its size. The binary is left at target/x86_64-unknown-linux-musl/release.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${WASMOP_IMAGE:-wasmop:dev}
target=x86_64-unknown-linux-musl

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then sudo_if_needed apt-get update -qq; apt_updated=1; fi
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v podman >/dev/null || apt_install podman
command -v musl-gcc >/dev/null || apt_install musl-tools
command -v strip >/dev/null || apt_install binutils
rustup target add "$target" >/dev/null 2>&1 || rustup target add "$target"

# ring's C and assembly parts build with musl-gcc (cc-rs picks it for this target).
cargo build --release -p wasmop --bin wasmop --no-default-features --target "$target"
bin="target/$target/release/wasmop"

# Static: no program interpreter (dynamic loader) in the ELF headers.
if LC_ALL=C readelf -l "$bin" | grep -q 'program interpreter'; then
  echo "build-image: $bin is not static" >&2
  exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$bin" "$context/wasmop"
strip "$context/wasmop"
mkdir "$context/cache"
podman build --quiet --pull=never --file deploy/Containerfile --tag "$image" "$context" >/dev/null

size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image: $image"
echo "size: $size bytes ($(( (size + 1048575) / 1048576 )) MiB); binary $(stat -c %s "$context/wasmop") bytes stripped"
