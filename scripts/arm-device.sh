#!/usr/bin/env bash
# An emulated aarch64 board reached over ssh on 127.0.0.1 (qemu-user + an mmdebstrapped arm64 root).
#
#   sudo scripts/arm-device.sh          build once (cached tarball), register qemu, start sshd, write the entry
#   sudo scripts/arm-device.sh stop     stop the board's sshd and unmount its /proc
#   scripts/arm-device.sh status        say whether the board answers (exit 0) or not (exit 1)
#
# Timings under emulation are meaningless (300-500x slower than native): the board proves function.
# The first build needs about 280 s of CPU time (4 min 11 s on two idle cores; 29 min at load average 13-14);
# later runs reuse the extracted root (seconds) or the cached tarball (about a minute). Everything
# listens on 127.0.0.1 only.
#
# Environment: EFFBENCH_ARM_CACHE (where the tarball and root live; default ~/.cache/effbench/arm-device),
# EFFBENCH_ARM_STATE (sshd pid, client key and the devices.yaml entry; default /run/effbench-arm-device),
# EFFBENCH_ARM_PORT (default 2222), EFFBENCH_ARM_HOST_PYTHON (the host's CPython 3.11 whose pip installs
# the board's wheels; default: the checkout's .venv, else python3.11). A second board for a trial build
# (its own cache, state and port) leaves the one the tests use alone.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SUITE=bookworm
BOARD_PYTHON=3.11 # bookworm's python3
MIRROR=http://deb.debian.org/debian
NUMPY_VERSION=2.4.6
ORT_VERSION=1.32.0
LITERT_VERSION=2.3.0
LAYOUT=1 # bump when the root's layout changes, so an old tarball is not reused
QEMU_MAJOR_MIN=10 # bookworm's qemu 7.2 segfaults in onnxruntime >= 1.28 and in LiteRT's Interpreter

NAME="arm64-${SUITE}-numpy${NUMPY_VERSION}-ort${ORT_VERSION}-litert${LITERT_VERSION}-v${LAYOUT}"
CACHE="${EFFBENCH_ARM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/effbench/arm-device}"
STATE="${EFFBENCH_ARM_STATE:-/run/effbench-arm-device}"
PORT="${EFFBENCH_ARM_PORT:-2222}"
TARBALL="$CACHE/$NAME.tar.zst"
ROOT="$CACHE/$NAME"
VENV=/opt/effbench/venv
KEY="$STATE/id_ed25519"
PIDFILE=/run/effbench-sshd.pid # inside the root
BINFMT=/proc/sys/fs/binfmt_misc
SSH_OPTIONS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=20 -o BatchMode=yes)

log() { echo "arm-device: $*" >&2; }
die() {
  echo "arm-device: $1" >&2
  exit "${2:-1}"
}
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$ROOT" "$@"; }
answers() { ssh "${SSH_OPTIONS[@]}" -i "$KEY" -p "$PORT" root@127.0.0.1 true >/dev/null 2>&1; }

sshd_pid() {
  local pid
  pid=$(cat "$ROOT$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop() {
  local pid
  if pid=$(sshd_pid); then
    kill "$pid" && log "stopped sshd ($pid)"
  fi
  if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc"; fi
  rm -f "$STATE/devices.yaml"
}

# --- qemu 10 and its binfmt entry -----------------------------------------------------------
qemu_binary() { # the newest static qemu-aarch64 installed
  for q in /usr/bin/qemu-aarch64 /usr/bin/qemu-aarch64-static /usr/libexec/qemu-binfmt/aarch64-binfmt-P; do
    [ -x "$q" ] && echo "$q" && return 0
  done
  return 1
}

qemu_major() { "$1" --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1; }

install_qemu() {
  local q major
  if q=$(qemu_binary) && major=$(qemu_major "$q") && [ "${major:-0}" -ge "$QEMU_MAJOR_MIN" ]; then
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  local candidate
  candidate=$(apt-cache policy qemu-user 2>/dev/null | sed -n 's/.*Candidate: [0-9]*:\{0,1\}\([0-9]*\)\..*/\1/p')
  local target=()
  if [ "${candidate:-0}" -lt "$QEMU_MAJOR_MIN" ]; then
    if ! apt-cache policy qemu-user | grep -q -- "-backports"; then
      log "adding ${SUITE}-backports for qemu ${QEMU_MAJOR_MIN} (bookworm's qemu 7.2 crashes in onnxruntime)"
      cat >/etc/apt/sources.list.d/effbench-backports.sources <<EOF
Types: deb
URIs: $MIRROR
Suites: ${SUITE}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
      apt-get update -qq
    fi
    target=(-t "${SUITE}-backports")
  fi
  apt-get install -y -qq --no-install-recommends "${target[@]}" qemu-user >/dev/null
  q=$(qemu_binary) || die "qemu-user installed but no qemu-aarch64 found"
  major=$(qemu_major "$q")
  [ "${major:-0}" -ge "$QEMU_MAJOR_MIN" ] || die "qemu-aarch64 is version $major, need >= $QEMU_MAJOR_MIN"
}

register_binfmt() {
  local q entry="$BINFMT/qemu-aarch64"
  q=$(qemu_binary)
  if [ -e "$entry" ]; then
    if grep -qx "interpreter $q" "$entry" && grep -q "^flags: .*F" "$entry"; then return 0; fi
    # an older qemu's entry: an exec inside the board goes back through binfmt, so it must be this one
    echo -1 >"$entry"
  fi
  for other in "$BINFMT"/*; do # another name registered for aarch64 ELF (binfmt-support's) would win
    [ -f "$other" ] || continue
    case "$(basename "$other")" in register | status) continue ;; esac
    if grep -q "^magic 7f454c460201010000000000000000000200b700" "$other"; then echo -1 >"$other"; fi
  done
  local magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  # F: the kernel opens qemu now, so it works inside the chroot; P: keeps argv[0]
  echo ":qemu-aarch64:M::${magic}:${mask}:${q}:PF" >"$BINFMT/register"
  log "registered $q for aarch64 binaries"
}

# --- the root: built once, cached as a tarball ----------------------------------------------
# Only what must run as aarch64 is emulated: mmdebstrap resolves and downloads with the host's apt
# (only dpkg and the maintainer scripts run under qemu, where debootstrap's second stage ran all of
# it), and the host's pip installs the aarch64 wheels into the board's venv (emulated pip took most of
# the rest). The host's pip must be CPython $BOARD_PYTHON, the board's, so the .pyc files it compiles
# are the ones the board would write.
host_python() {
  local py
  for py in "${EFFBENCH_ARM_HOST_PYTHON:-}" "$REPO/.venv/bin/python" "python$BOARD_PYTHON" python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null || continue
    if "$py" -c "import sys, pip; sys.exit(sys.version_info[:2] != tuple(map(int, '$BOARD_PYTHON'.split('.'))))" 2>/dev/null; then
      echo "$py" && return 0
    fi
  done
  return 1
}

# pip install for the board, run by the host: aarch64 wheels only, into the venv's site-packages
board_pip() {
  local site=$1 py
  shift
  py=$(host_python) || die "no host Python $BOARD_PYTHON with pip (EFFBENCH_ARM_HOST_PYTHON names one)"
  local cert=()
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cert=(--cert /etc/ssl/certs/ca-certificates.crt)
  local platforms=()
  for p in manylinux_2_36 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
    manylinux_2_26 manylinux_2_24 manylinux2014 manylinux_2_17; do platforms+=(--platform "${p}_aarch64"); done
  # the host's pip configuration (its own indexes, constraints and find-links) stays out, as inside the board
  env PIP_CONFIG_FILE=/dev/null "$py" -m pip --isolated install -q --no-cache-dir --disable-pip-version-check \
    "${cert[@]}" --only-binary=:all: "${platforms[@]}" --implementation cp --python-version "$BOARD_PYTHON" \
    --abi "cp${BOARD_PYTHON/./}" --target "$site" "$@"
}

# pip --target leaves console scripts in site-packages/bin with the host's Python in their #!
move_board_scripts() {
  local site=$1 bin=$2 script
  [ -d "$site/bin" ] || return 0
  for script in "$site/bin"/*; do
    sed -i "1s|^#!.*python.*\$|#!$VENV/bin/python|" "$script"
    chmod 755 "$script"
    mv -f "$script" "$bin/"
  done
  rmdir "$site/bin"
}

build_root() {
  local build="$ROOT.build" started=$SECONDS
  rm -rf "$build"
  mkdir -p "$build"
  command -v mmdebstrap >/dev/null && command -v arch-test >/dev/null ||
    apt-get install -y -qq --no-install-recommends mmdebstrap arch-test >/dev/null
  log "mmdebstrap $SUITE arm64 into $build (host apt; dpkg and maintainer scripts emulated)"
  # pip inside the board checks certificates against this machine's extra CAs too: they are in place
  # before ca-certificates is configured, so its (emulated) update-ca-certificates runs once
  local cas=()
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cas=(--setup-hook 'mkdir -p "$1/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"')
  fi
  mmdebstrap --mode=root --arch=arm64 --variant=minbase "${cas[@]}" \
    --include=python3,python3-venv,python3-pip,openssh-server,ca-certificates \
    "$SUITE" "$build" "$MIRROR" >"$CACHE/build.log" 2>&1 || die "mmdebstrap failed: see $CACHE/build.log"
  log "root built ($((SECONDS - started)) s)"
  log "venv with numpy $NUMPY_VERSION, onnxruntime $ORT_VERSION, ai-edge-litert $LITERT_VERSION (host pip, aarch64 wheels)"
  ROOT="$build" in_root python3 -m venv --without-pip "$VENV"
  local site="$build$VENV/lib/python$BOARD_PYTHON/site-packages"
  # pip and setuptools: the wheels Debian's ensurepip would install, from the board's own root
  local bin="$build$VENV/bin"
  board_pip "$site" "$build"/usr/share/python-wheels/pip-*.whl "$build"/usr/share/python-wheels/setuptools-*.whl \
    >>"$CACHE/build.log" 2>&1 || die "pip install of the board's pip failed: see $CACHE/build.log"
  move_board_scripts "$site" "$bin"
  board_pip "$site" "numpy==$NUMPY_VERSION" "onnxruntime==$ORT_VERSION" >>"$CACHE/build.log" 2>&1 ||
    die "pip install for the board failed: see $CACHE/build.log"
  move_board_scripts "$site" "$bin"
  board_pip "$site" "numpy==$NUMPY_VERSION" "ai-edge-litert==$LITERT_VERSION" >>"$CACHE/build.log" 2>&1 ||
    log "ai-edge-litert $LITERT_VERSION did not install (the board runs without LiteRT)"
  move_board_scripts "$site" "$bin"
  log "venv ready ($((SECONDS - started)) s)"
  ROOT="$build" in_root ssh-keygen -A >>"$CACHE/build.log" 2>&1
  mkdir -p "$build/run/sshd" "$build/root/.ssh"
  chmod 700 "$build/root/.ssh"
  rm -rf "$build/var/cache/apt/archives/"*.deb "$build/var/lib/apt/lists/"*
  ROOT="$build" in_root "$VENV/bin/python" -c "import json, platform, sys
from importlib import metadata
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({'name': '$NAME', 'machine': platform.machine(), 'python': sys.version.split()[0],
                  'numpy': version('numpy'), 'onnxruntime': version('onnxruntime'),
                  'ai-edge-litert': version('ai-edge-litert')}))" >"$build/etc/effbench-board.json"
  log "board: $(cat "$build/etc/effbench-board.json")"
  log "caching $TARBALL"
  tar -C "$build" --numeric-owner -I 'zstd -T0 -3' -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
  mv "$build" "$ROOT"
  log "first build done in $((SECONDS - started)) s"
}

extract_root() {
  local build="$ROOT.build"
  log "extracting $TARBALL"
  rm -rf "$build"
  mkdir -p "$build"
  tar -C "$build" --numeric-owner -I zstd -xpf "$TARBALL"
  mv "$build" "$ROOT"
}

# --- sshd and the entry ----------------------------------------------------------------------
start_sshd() {
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N "" -C effbench-arm-device -f "$KEY"
  install -m 600 "$KEY.pub" "$ROOT/root/.ssh/authorized_keys"
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  for dev in null:1:3 zero:1:5 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r n major minor <<<"$dev"
    [ -c "$ROOT/dev/$n" ] || { rm -f "$ROOT/dev/$n" && mknod -m 666 "$ROOT/dev/$n" c "$major" "$minor"; }
  done
  mkdir -p "$ROOT/run/sshd" "$ROOT/tmp" && chmod 1777 "$ROOT/tmp"
  if ! sshd_pid >/dev/null; then
    in_root /usr/sbin/sshd -p "$PORT" -o ListenAddress=127.0.0.1 -o PidFile="$PIDFILE" \
      -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \
      -o UsePAM=no -o AuthorizedKeysFile=/root/.ssh/authorized_keys -o MaxStartups=100:30:200 \
      -o LoginGraceTime=300 -E /var/log/effbench-sshd.log
  fi
  local deadline=$((SECONDS + 60))
  until answers; do
    [ $SECONDS -lt $deadline ] || die "the board's sshd did not answer on 127.0.0.1:$PORT within 60 s (log: $ROOT/var/log/effbench-sshd.log)"
    sleep 1
  done
}

write_entry() {
  cat >"$STATE/devices.yaml.tmp" <<EOF
# Written by scripts/arm-device.sh: the emulated aarch64 board ($NAME).
devices:
  arm-board:
    kind: cpu
    description: emulated aarch64 board (qemu-user, Debian $SUITE arm64); timings are not meaningful
    ssh:
      host: root@127.0.0.1
      port: $PORT
      identity_file: $KEY
      python: $VENV/bin/python
      workdir: /root/effbench
      options: [-o, StrictHostKeyChecking=no, -o, UserKnownHostsFile=/dev/null, -o, LogLevel=ERROR]
EOF
  mv "$STATE/devices.yaml.tmp" "$STATE/devices.yaml"
}

main() {
  case "${1:-start}" in
    status)
      answers && echo "arm-device: ready on 127.0.0.1:$PORT ($STATE/devices.yaml)" && exit 0
      echo "arm-device: not running (start it: sudo scripts/arm-device.sh)" >&2
      exit 1
      ;;
    stop)
      [ "$(id -u)" = 0 ] || die "run as root: sudo $0 stop" 2
      stop
      exit 0
      ;;
    start) ;;
    *) die "unknown command '$1' (use: start | stop | status)" 2 ;;
  esac
  [ "$(id -u)" = 0 ] || die "run as root (it installs qemu, registers binfmt and chroots): sudo $0" 2
  if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null ||
      die "binfmt_misc is not available here (mount -t binfmt_misc binfmt_misc $BINFMT failed)" 2
  fi
  mkdir -p "$CACHE"
  install_qemu
  register_binfmt
  if [ ! -d "$ROOT" ]; then
    if [ -f "$TARBALL" ]; then extract_root; else build_root; fi
  fi
  start_sshd
  write_entry
  log "ready: device 'arm-board' on 127.0.0.1:$PORT, entry in $STATE/devices.yaml"
}

main "$@"
