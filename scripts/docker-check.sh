#!/usr/bin/env bash
# Builds docker/'s images and runs them for real, on a private dockerd that never touches the host's
# network: no bridge, no iptables, no ip forwarding or masquerading, vfs storage, its own socket,
# data root and exec root. No registry is reachable here, so the CPU image's base
# (python:3.11-slim-bookworm) is made from a debootstrapped Debian root with `docker import`.
#
#   sudo scripts/docker-check.sh [IMAGE...]   IMAGE: cpu-onnx (the default), cpu, gpu, jetson
#
# cpu-onnx: the CPU image without torch (EXTRAS=onnx-cpu) measures an ONNX file in `docker run --network
# none`, twice: copied into the mounted cache, then cached. cpu: the full CPU image (torch, ~8 GB) does
# the same with a timm model, exported in the container. gpu, jetson: their NGC bases cannot be pulled
# here, so the imported root is tagged as a stand-in for their FROM and every later step is tried.
#
# Not part of the test suite (a build takes many minutes). Images are built one at a time, each removed
# with its build containers before the next; the daemon it starts is stopped on exit and its data root
# removed (EFFBENCH_DOCKER_KEEP=1 keeps them). A watchdog stops the daemon, and so the check, when the
# free space under the data root drops below EFFBENCH_DOCKER_STOP_GB (default 15).
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
STOP_GB="${EFFBENCH_DOCKER_STOP_GB:-15}"
# The free space a check starts with: what it took here plus STOP_GB (vfs copies the whole image for
# every container and layer). Measured 2026-12-07 (docs/measurements/docker-check-2026-12-07.log):
# cpu-onnx took about 2 GB at its peak, cpu about 14 GB (df, other work on the disk included).
MIN_GB_ONNX=20
MIN_GB_FULL=35
export DOCKER_HOST="unix://$SOCK"

log() { echo "docker-check: $*" >&2; }
die() {
  echo "docker-check: $1" >&2
  exit "${2:-1}"
}
free_gb() { df -P -BG "$WORK" | awk 'NR==2 {print int($4)}'; }

DOCKERD_PID=""
INDEX_PID=""
WATCH_PID=""
cleanup() {
  if [ -n "$INDEX_PID" ]; then kill "$INDEX_PID" 2>/dev/null || true; fi
  if [ -n "$WATCH_PID" ]; then kill "$WATCH_PID" 2>/dev/null || true; fi
  report_disk
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "stopping dockerd ($DOCKERD_PID)"
    kill "$DOCKERD_PID"
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
  fi
  if [ -n "$DOCKERD_PID" ] && [ -z "${EFFBENCH_DOCKER_KEEP:-}" ]; then # vfs: a full copy of the image per layer
    if mountpoint -q "$WORK/exec/netns/default" 2>/dev/null; then umount "$WORK/exec/netns/default"; fi
    rm -rf "$WORK/data" "$WORK/exec"
    log "removed the data root ($(free_gb) GB free)"
  fi
}
trap cleanup EXIT

# Every 5 s: the least free space seen (df only: a du over vfs layers would cost minutes); under
# STOP_GB free, dockerd is stopped. Errors must not end the watchdog, so no errexit here.
watch_disk() {
  set +e
  local min_free=100000 free
  while sleep 5; do
    free=$(free_gb) || continue
    [ "$free" -lt "$min_free" ] && min_free=$free && echo "$min_free" >"$WORK/disk.min"
    if [ "$free" -lt "$STOP_GB" ]; then
      log "only $free GB free under $WORK (< $STOP_GB GB): stopping dockerd"
      kill "$DOCKERD_PID" 2>/dev/null
      return
    fi
  done
}

report_disk() {
  [ -f "$WORK/disk.min" ] || return 0
  log "disk: free space under $WORK never below $(cat "$WORK/disk.min") GB (${START_FREE:-?} GB at the start)"
}

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

# Removes images with their build containers and dangling layers: the next build starts from the base only
drop() {
  docker image rm -f "$@" >/dev/null 2>&1 || true
  docker container prune -f >/dev/null
  docker image prune -f >/dev/null
  log "removed $*: data root $(du -s -BG "$WORK/data" | awk '{print $1}'), $(free_gb) GB free"
}

build() { # NAME FILE [docker build options]: the image, its size and how long it took
  local name=$1 file=$2 started=$SECONDS
  shift 2
  log "docker build -f docker/$file -t $name $* ($(free_gb) GB free)"
  docker build --force-rm --network host "$@" -f "$REPO/docker/$file" -t "$name" "$REPO" \
    >"$WORK/build-${name#*:}.log" 2>&1 || return 1
  log "built $name in $((SECONDS - started)) s: $(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.2f GB", $1/1e9}')"
}

# `bench run ARGS` in IMAGE twice with --network none (the artifact made in the mounted cache, then the
# same cell from it); the second result must be ok, cached, parity ok, and stored in the mounted database
cell_twice() {
  local image=$1 out=$2 pass
  shift 2
  log "docker run --network none $image run $* (twice: artifact made, then cached)"
  for pass in export cached; do
    docker run --rm --network none -v "$out/cache:/cache" -v "$out/results:/results" -v "$out/models:/models:ro" \
      "$image" run "$@" --out "/results/$pass.json" >"$WORK/run-${image#*:}-$pass.log" 2>&1 ||
      die "docker run $image ($pass) failed: see $WORK/run-${image#*:}-$pass.log"
  done
  python3 - "$out/results" <<'EOF'
import json, sqlite3, sys
from pathlib import Path

out = Path(sys.argv[1])
first, rec = (json.loads((out / f"{p}.json").read_text())[-1] for p in ("export", "cached"))
assert rec["status"] == "ok", rec.get("error")
assert first["artifact_cached"] is False and rec["artifact_cached"] is True, "the second run did not use the cache"
assert rec["parity"]["ok"], rec["parity"]
stored = sqlite3.connect(out / "effbench.db").execute("select count(*) from results").fetchone()[0]
print(
    "docker-check: the cached cell in the container: %s on %s, %s, median %.2f ms, parity ok against %s "
    "(max abs err %.1e), artifact_cached %s, python %s; %d results stored in the mounted effbench.db"
    % (rec["model"], rec["backend"], rec["status"], rec["latency_ms"]["median"],
       rec["parity"]["reference"], rec["parity"]["max_abs_err"], rec["artifact_cached"], rec["env"]["python"], stored),
    file=sys.stderr,
)
EOF
}

fresh_run_dir() {
  local out="$WORK/run-$1"
  rm -rf "$out" && mkdir -p "$out/cache" "$out/results" "$out/models"
  echo "$out"
}

# The ONNX file the image without torch measures: efficientvit_m0 exported by this checkout's venv
host_onnx_model() {
  local out=$1 bench="$REPO/.venv/bin/bench" model
  [ -x "$bench" ] || die "no $bench to export the model with: run make setup first" 2
  log "exporting efficientvit_m0 to ONNX on the host ($bench): the image without torch cannot"
  EFFBENCH_CACHE="$out/host-cache" EFFBENCH_DB="$out/host.db" "$bench" run -m efficientvit_m0 -b onnxruntime \
    --duration 1 --warmup 0.2 --threads 1 >"$WORK/host-export.log" 2>&1 || die "the host export failed: see $WORK/host-export.log"
  model=$(find "$out/host-cache/artifacts" -name model.onnx | head -n1)
  [ -n "$model" ] || die "the host export left no model.onnx under $out/host-cache/artifacts"
  cp "$model" "$out/models/efficientvit_m0.onnx"
  rm -rf "$out/host-cache" "$out/host.db"
}

check_cpu_onnx() {
  local out
  out=$(fresh_run_dir cpu-onnx)
  host_onnx_model "$out"
  build effbench:cpu-onnx Dockerfile.cpu --build-arg EXTRAS=onnx-cpu --build-arg "PIP_EXTRA_INDEX_URL=$INDEX_URLS" ||
    die "the effbench:cpu-onnx build failed: see $WORK/build-cpu-onnx.log"
  cell_twice effbench:cpu-onnx "$out" -m /models/efficientvit_m0.onnx -b openvino --duration 1 --warmup 0.2 --threads 1
  drop effbench:cpu-onnx
}

check_cpu() {
  local out
  out=$(fresh_run_dir cpu)
  build effbench:cpu Dockerfile.cpu --build-arg "PIP_EXTRA_INDEX_URL=$INDEX_URLS" ||
    die "the effbench:cpu build failed: see $WORK/build-cpu.log"
  cell_twice effbench:cpu "$out" -m efficientvit_m0 -b onnxruntime --duration 1 --warmup 0.2 --threads 1
  drop effbench:cpu
}

# GPU / Jetson: their NGC bases cannot be pulled here. The imported Debian root is tagged with their
# FROM name as a stand-in (amd64, no CUDA, no TensorRT), so every step after FROM is tried; the log
# says which step stopped the build and why.
check_standin() {
  local name=$1 file="Dockerfile.$1" from
  from=$(awk '$1 == "FROM" {print $2; exit}' "$REPO/docker/$file")
  docker tag python:3.11-slim-bookworm "$from"
  log "effbench:$name: $from is a stand-in here (the imported Debian bookworm root: amd64, no CUDA, no TensorRT)"
  if build "effbench:$name" "$file"; then
    log "effbench:$name built on the stand-in"
  else
    local plain="$WORK/build-$name.txt" # the build log without its colour codes
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/build-$name.log" >"$plain"
    log "effbench:$name stopped at $(grep -E '^Step [0-9]+/[0-9]+ : ' "$plain" | tail -n1 | cut -c1-60)...: $(grep -m1 -E '^E: |Error|No module' "$plain" || tail -n1 "$plain")"
  fi
  drop "effbench:$name" "$from"
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root (it starts a private dockerd): sudo $0" 2
  local images=("${@:-cpu-onnx}") need=$MIN_GB_ONNX image free
  for image in "${images[@]}"; do
    case "$image" in
      cpu | gpu) need=$MIN_GB_FULL ;;
      cpu-onnx | jetson) ;;
      *) die "unknown image '$image' (use: cpu-onnx, cpu, gpu, jetson)" 2 ;;
    esac
  done
  mkdir -p "$WORK" "$CACHE"
  free=$(free_gb)
  START_FREE=$free
  [ "$free" -ge "${EFFBENCH_DOCKER_MIN_GB:-$need}" ] ||
    die "only ${free} GB free under $WORK, these images need about $need GB (EFFBENCH_DOCKER_WORK moves it, EFFBENCH_DOCKER_MIN_GB overrides)" 2
  log "$(date -u '+%F %T') UTC on $(nproc) cores; $free GB free under $WORK; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  install_docker
  start_dockerd
  rm -f "$WORK/disk.min"
  watch_disk &
  WATCH_PID=$!
  base_image
  start_local_index
  for image in "${images[@]}"; do
    case "$image" in
      cpu-onnx) check_cpu_onnx ;;
      cpu) check_cpu ;;
      *) check_standin "$image" ;;
    esac
  done
  log "done $(date -u '+%F %T') UTC; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

main "$@"
