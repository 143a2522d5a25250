#!/usr/bin/env bash
# Builds docker/'s images and runs one for real, on a private dockerd that never touches the host's
# network: no bridge, no iptables, no ip forwarding or masquerading, vfs storage, its own socket,
# data root and exec root. No registry is reachable here, so the CPU image's base
# (python:3.11-slim-bookworm) is made from a debootstrapped Debian root with `docker import`.
#
#   sudo scripts/docker-check.sh            base image, CPU image, a cached cell in `docker run --network none`
#   sudo scripts/docker-check.sh gpu jetson  also check how far the GPU and Jetson Dockerfiles build
#
# Not part of the test suite (a build takes many minutes). The daemon it starts is stopped on exit and
# its data root removed (EFFBENCH_DOCKER_KEEP=1 keeps the images).
# pip inside the build reaches this machine's package indexes (/opt/pypi*, when present) through a
# file server on 127.0.0.1, and PyPI otherwise; the build containers share the host's network
# namespace (`--network host`), since there is no bridge.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
LAYOUT=1
WORK="${EFFBENCH_DOCKER_WORK:-/var/tmp/effbench-docker}"
CACHE="${EFFBENCH_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/effbench/docker-check}"
SOCK="$WORK/docker.sock"
BASE_TAR="$CACHE/base-amd64-${SUITE}-python3-v${LAYOUT}.tar"
INDEX_PORT="${EFFBENCH_DOCKER_INDEX_PORT:-28765}"
export DOCKER_HOST="unix://$SOCK"

log() { echo "docker-check: $*" >&2; }
die() {
  echo "docker-check: $1" >&2
  exit "${2:-1}"
}

DOCKERD_PID=""
INDEX_PID=""
cleanup() {
  if [ -n "$INDEX_PID" ]; then kill "$INDEX_PID" 2>/dev/null || true; fi
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "stopping dockerd ($DOCKERD_PID)"
    kill "$DOCKERD_PID"
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
  fi
  if [ -n "$DOCKERD_PID" ] && [ -z "${EFFBENCH_DOCKER_KEEP:-}" ]; then # vfs: a full copy of the image per layer
    if mountpoint -q "$WORK/exec/netns/default" 2>/dev/null; then umount "$WORK/exec/netns/default"; fi
    rm -rf "$WORK/data" "$WORK/exec"
  fi
}
trap cleanup EXIT

install_docker() {
  if command -v dockerd >/dev/null && command -v containerd >/dev/null && command -v runc >/dev/null; then return 0; fi
  log "installing docker.io (its service is kept from starting: the default daemon rewrites the firewall)"
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  if [ -n "$added" ]; then rm -f "$policy"; fi
  command -v docker >/dev/null || die "docker client missing after installing docker.io"
}

start_dockerd() {
  mkdir -p "$WORK/data" "$WORK/exec"
  log "starting a private dockerd on $SOCK (no bridge, no iptables, vfs)"
  dockerd --host "unix://$SOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false --storage-driver=vfs \
    >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || die "dockerd exited: $(tail -n 3 "$WORK/dockerd.log" | tr '\n' ' ')"
    sleep 1
  done
  die "dockerd did not answer on $SOCK within 60 s (log: $WORK/dockerd.log)"
}

base_image() {
  if docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1; then return 0; fi
  if [ ! -f "$BASE_TAR" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    local root="$CACHE/base.build"
    rm -rf "$root" && mkdir -p "$root"
    log "debootstrap $SUITE (amd64, python3) for the base image"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
      "$SUITE" "$root" "$MIRROR" >"$CACHE/base.log" 2>&1 || die "debootstrap failed: see $CACHE/base.log"
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then # pip checks this machine's extra CAs too
      cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
      chroot "$root" update-ca-certificates >>"$CACHE/base.log" 2>&1
    fi
    rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
    tar -C "$root" --numeric-owner -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root"
  fi
  log "docker import $(basename "$BASE_TAR") as python:3.11-slim-bookworm"
  # Debian's pip refuses system installs (PEP 668); the official image's pip does not
  docker import --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' --change 'CMD ["python3"]' "$BASE_TAR" \
    python:3.11-slim-bookworm >/dev/null
}

INDEX_URLS=""
start_local_index() { # serves /opt/pypi*/simple on 127.0.0.1 (their links are relative)
  for d in /opt/pypi /opt/pypi-more; do
    [ -d "$d/simple" ] && INDEX_URLS="${INDEX_URLS:+$INDEX_URLS }http://127.0.0.1:$INDEX_PORT/$(basename "$d")/simple"
  done
  [ -n "$INDEX_URLS" ] || return 0
  python3 -m http.server --bind 127.0.0.1 --directory /opt "$INDEX_PORT" >"$WORK/index.log" 2>&1 &
  INDEX_PID=$!
  sleep 1
}

build_cpu() {
  start_local_index
  log "docker build -f docker/Dockerfile.cpu -t effbench:cpu (pip extra index: ${INDEX_URLS:-none})"
  docker build --network host --build-arg "PIP_EXTRA_INDEX_URL=$INDEX_URLS" -f "$REPO/docker/Dockerfile.cpu" \
    -t effbench:cpu "$REPO" >"$WORK/build-cpu.log" 2>&1 || die "CPU image build failed: see $WORK/build-cpu.log"
  log "built effbench:cpu ($(docker image inspect -f '{{.Size}}' effbench:cpu | awk '{printf "%.1f GB", $1/1e9}'))"
}

run_cached_cell() {
  local out="$WORK/run"
  rm -rf "$out" && mkdir -p "$out/cache" "$out/results"
  local args=(run -m efficientvit_m0 -b onnxruntime --duration 1 --warmup 0.2 --threads 1 --out /results/r.json)
  log "first cell (exports into the mounted cache), then the same cell again from the cache, both --network none"
  for pass in export cached; do
    docker run --rm --network none -v "$out/cache:/cache" -v "$out/results:/results" effbench:cpu "${args[@]}" \
      >"$WORK/run-$pass.log" 2>&1 || die "docker run ($pass) failed: see $WORK/run-$pass.log"
  done
  python3 - "$out/results/r.json" <<'EOF'
import json, sys
rec = json.load(open(sys.argv[1]))[-1]
assert rec["status"] == "ok", rec.get("error")
assert rec.get("artifact_cached") is True, "the second run did not use the cached artifact"
print("docker-check: cached cell in the container: %s, median %.2f ms, parity %s, artifact_cached %s"
      % (rec["status"], rec["latency_ms"]["median"], rec["parity"]["ok"], rec["artifact_cached"]), file=sys.stderr)
EOF
}

check_other() { # GPU / Jetson: their NGC bases cannot be pulled here; say how far the build gets
  local name=$1 file="$REPO/docker/Dockerfile.$1"
  log "docker build -f docker/Dockerfile.$name (its base image is on nvcr.io, unreachable here)"
  if docker build --network host -f "$file" -t "effbench:$name" "$REPO" >"$WORK/build-$name.log" 2>&1; then
    log "built effbench:$name"
  else
    log "effbench:$name stopped at: $(grep -m1 -iE 'error|failed' "$WORK/build-$name.log" || tail -n1 "$WORK/build-$name.log")"
  fi
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root (it starts a private dockerd): sudo $0" 2
  for extra in "$@"; do
    case "$extra" in gpu | jetson) ;; *) die "unknown image '$extra' (use: gpu, jetson)" 2 ;; esac
  done
  mkdir -p "$WORK" "$CACHE"
  local free_gb
  free_gb=$(df -P -BG "$WORK" | awk 'NR==2 {print int($4)}')
  # vfs copies the whole image for every build step: the CPU image (torch with CUDA libraries from
  # PyPI, about 8 GB) took 39 GB by its 11th step here
  [ "$free_gb" -ge "${EFFBENCH_DOCKER_MIN_GB:-120}" ] ||
    die "only ${free_gb} GB free under $WORK; vfs needs about 120 GB for the CPU image (EFFBENCH_DOCKER_WORK to move it)"
  install_docker
  start_dockerd
  base_image
  build_cpu
  run_cached_cell
  for extra in "$@"; do check_other "$extra"; done
  log "done"
}

main "$@"
