#!/usr/bin/env bash
# `make setup`'s first step: the system packages the harness and its tests need, installed
# from the machine's own package manager when this runs as root, or named with the exact
# command to run otherwise (once, all of them, before anything else is set up).
#
#   PostgreSQL server binaries  initdb and pg_ctl: every stack starts its own clusters
#                               (not needed with HARNESS_PG_BIN or HARNESS_PG_DSN set)
#   python3-venv                the virtualenv `make setup` creates
#   wrk                         the benchmarks' reference load generator (`make test` runs them)
#   chromium                    the browser the reports' end-to-end tests open them in
#                               (`make test`), and `make screenshot` photographs one with
#
# APT_GET names the package manager's command (default apt-get), PYTHON the interpreter the
# virtualenv is made from. Exit 0 when everything is there (or was installed), 4 otherwise.
set -euo pipefail

APT_GET="${APT_GET:-apt-get}"
PYTHON="${PYTHON:-python3}"

has_postgres() {
  [ -n "${HARNESS_PG_DSN:-}" ] && return 0
  if [ -n "${HARNESS_PG_BIN:-}" ]; then
    [ -x "$HARNESS_PG_BIN/initdb" ] && [ -x "$HARNESS_PG_BIN/pg_ctl" ]
    return
  fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}
has_venv() { "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; }
has_wrk() { command -v wrk >/dev/null 2>&1; }
has_chromium() { command -v chromium >/dev/null 2>&1; }

missing() {
  local packages=()
  has_postgres || packages+=(postgresql)
  has_venv || packages+=(python3-venv)
  has_wrk || packages+=(wrk)
  has_chromium || packages+=(chromium)
  echo "${packages[@]}"
}

read -r -a needed <<<"$(missing)"
((${#needed[@]})) || exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v "$APT_GET" >/dev/null 2>&1; then
  echo "make setup: missing system packages: ${needed[*]}" >&2
  if command -v "$APT_GET" >/dev/null 2>&1; then
    echo "  install them, then run make again:  sudo $APT_GET install -y ${needed[*]}" >&2
  else
    echo "  install them with your system's package manager (Debian: apt-get install -y" \
      "${needed[*]}), then run make again" >&2
  fi
  exit 4
fi

echo "make setup: installing ${needed[*]} with $APT_GET"
# The harness starts its own throw-away clusters: keep Debian from creating and starting a
# default one, and keep every package's service from starting while installing.
mkdir -p /etc/postgresql-common
[ -e /etc/postgresql-common/createcluster.conf ] ||
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
install() { "$APT_GET" install -y -q --no-install-recommends "${needed[@]}"; }
# The package lists may be empty on a fresh machine: refreshed only when they are needed.
install || { "$APT_GET" update -q && install; }

read -r -a still <<<"$(missing)"
if ((${#still[@]})); then
  echo "make setup: $APT_GET installed ${needed[*]}, but ${still[*]} still cannot be found" \
    "(wrk and chromium on PATH, the PostgreSQL server in /usr/lib/postgresql/*/bin)" >&2
  exit 4
fi
