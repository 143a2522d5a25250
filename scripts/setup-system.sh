#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v sshd >/dev/null 2>&1 || test -x /usr/sbin/sshd || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
# farm tests: a PostgreSQL server (initdb, postgres), and a loopback-only network namespace (ip, ss, setpriv)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v ip >/dev/null 2>&1 && command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v setpriv >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${need[*]} (run: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
