#!/usr/bin/env bash
# Write vault's systemd units (deploy/systemd/) into DESTDIR with this checkout's paths in them.
#   scripts/install-units.sh [--host vault|mail|all] [--vaultctl PATH] [--home DIR] DESTDIR
#     --host      vault: vault, vault-worker@   mail: vault-dealer, vault-collector
#                 (default: all)
#     --vaultctl  the vaultctl the units run (default: this checkout's .venv/bin/vaultctl)
#     --home      the home they use, VAULT_HOME (default: /var/lib/vault)
# It only writes files: `scripts/setup.sh units` installs into /etc/systemd/system and reloads
# systemd; for a staging directory or a test, call this directly.
set -euo pipefail
cd "$(dirname "$0")/.."
host=all
vaultctl="$PWD/.venv/bin/vaultctl"
home=/var/lib/vault
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host=${2:?}; shift 2 ;;
    --vaultctl) vaultctl=${2:?}; shift 2 ;;
    --home) home=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "install-units: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
dest=$1
case "$host" in
  vault) units=(vault.service vault-worker@.service) ;;
  mail) units=(vault-dealer.service vault-collector.service) ;;
  all) units=(vault.service vault-worker@.service vault-dealer.service vault-collector.service) ;;
  *) echo "install-units: --host is vault, mail or all, not $host" >&2; exit 2 ;;
esac
case "$vaultctl$home" in *'|'*|*'&'*|*'\'*) echo "install-units: paths may not hold | & or \\" >&2; exit 2 ;; esac
[ -x "$vaultctl" ] || { echo "install-units: $vaultctl is not executable (run scripts/setup.sh first)" >&2; exit 1; }
mkdir -p "$dest"
for unit in "${units[@]}"; do
  sed -e "s|@VAULTCTL@|$vaultctl|g" -e "s|@VAULT_HOME@|$home|g" "deploy/systemd/$unit" > "$dest/$unit.tmp"
  chmod 0644 "$dest/$unit.tmp"
  mv "$dest/$unit.tmp" "$dest/$unit"
  echo "$dest/$unit"
done
