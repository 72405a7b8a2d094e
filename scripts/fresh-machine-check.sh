#!/usr/bin/env bash
# Does the README's promise hold on a fresh Debian 12 machine? Run by hand, as root (not by CI):
#
#   scripts/fresh-machine-check.sh [ROOT] [-- PYTEST_ARGS...]      ROOT defaults to /var/tmp/vault-fresh
#   scripts/fresh-machine-check.sh --enter [ROOT] [-- COMMAND...]   the root as the last run left it,
#       mounted again, COMMAND (default bash) in it with the same clean environment, unmounted after;
#       e.g. -- sh -c 'cd /root/vault-test && .venv/bin/python -m pytest -x tests/ingest/dealer'
#
# 1. A pristine `debootstrap --variant=minbase bookworm` root in ROOT (the debootstrap output is
#    cached as a tarball in $CACHE, so reruns skip the download; every run unpacks it afresh).
# 2. What a real install has and minbase lacks, and nothing more: the apt sources the Debian
#    installer writes (main, security, updates), a hostname in /etc/hostname and /etc/hosts
#    (127.0.1.1 FQDN NAME), the root a mount point of its own, proc, sys, a private /dev (null,
#    zero, random, tty, pts, shm: not the host's, whose /dev/log the tests would otherwise share
#    with the host), tmpfs /tmp and /run, /etc/resolv.conf copied. The chroot runs in its own
#    UTS namespace with the kernel hostname set from /etc/hostname, as a booting machine does. Package scripts may not start
#    daemons (policy-rc.d, as on the developers' and CI machines): a chroot has no init to own
#    them, and a system Cyrus or Postfix would take ports 143/25 of the host's network.
#    This host's local CAs (/usr/local/share/ca-certificates/*.crt) are copied in: its https
#    goes through a TLS-inspecting proxy, and a site with one gives every machine its CA.
# 3. Only `git` and `ca-certificates` installed by this script: git to clone, the certificates
#    for https (pip and npm need them too, but setup.sh must bring everything else itself).
# 4. `git clone` of this checkout's committed HEAD (a bundle of it: nothing beside the
#    repository, no ../shared, no caches, no uncommitted changes) into /root/vault, and
#    `scripts/demo.sh` there; then a second fresh clone /root/vault-test and `scripts/test.sh`
#    there (setup.sh runs again in it: a new .venv; the demo's Debian packages are present, the
#    test packages are not). Both in the chroot, as root, with
#    `env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8`, signals at their
#    defaults (a shell started in the background would otherwise pass on an ignored SIGINT).
# 5. Logs in $LOGS (outside the root): demo.log, test.log, each line prefixed with the seconds
#    since the step began; for each step: exit code, wall time, CPU time of the processes it
#    waited for, last lines, the pytest summary line.
#
# Everything mounted is unmounted and every process left running in the root is killed on exit,
# failure or interrupt. The root stays on disk for inspection until the next run wipes it.
#
# Environment: CACHE (/var/tmp/vault-fresh-cache), LOGS ($CACHE/logs/<time>), MIRROR
# (http://deb.debian.org/debian), STEPS ("demo test"), STEP_TIMEOUT (seconds per step, 5400),
# HOSTNAME_FQDN (vault-fresh.example.org), RESOLV_CONF (/etc/resolv.conf, copied into the root),
# HOSTS (installer: /etc/hosts and /etc/hostname as the Debian installer writes them; debootstrap:
# as debootstrap leaves them, no /etc/hosts and this host's hostname, which a real machine never
# has: every lookup of the hostname, of localhost and of 127.0.0.1 then goes to DNS).
# Note: pip in the root has none of this host's pip configuration (no local wheel mirror) and
# reaches PyPI directly; npm reaches its public registry.
set -euo pipefail
{ # read whole before it runs: editing this file during a run cannot change the run

here=$(cd "$(dirname "$0")/.." && pwd)
root=/var/tmp/vault-fresh
enter=""
[ "${1:-}" = --enter ] && { enter=1; shift; }
if [ $# -gt 0 ] && [ "$1" != -- ]; then root=$1; shift; fi
[ "${1:-}" = -- ] && shift
pytest_args=("$@")
root=$(realpath -m "$root")
cache=${CACHE:-/var/tmp/vault-fresh-cache}
mirror=${MIRROR:-http://deb.debian.org/debian}
steps=${STEPS:-demo test}
step_timeout=${STEP_TIMEOUT:-5400}
fqdn=${HOSTNAME_FQDN:-vault-fresh.example.org}
short=${fqdn%%.*}
logs=${LOGS:-$cache/logs/$(date +%Y%m%dT%H%M%S)}
tarball=$cache/bookworm-minbase.tar
resolv_conf=${RESOLV_CONF:-/etc/resolv.conf}
hosts_mode=${HOSTS:-installer}
case "$hosts_mode" in installer | debootstrap) ;; *) echo "HOSTS=installer or debootstrap" >&2; exit 2 ;; esac

say() { printf '\n[fresh-machine] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, mounts, chroot)"
case "$root" in / | /usr* | /etc* | /home | /root | /work*) die "refusing ROOT=$root" ;; esac
git -C "$here" rev-parse --verify -q HEAD >/dev/null || die "$here is not a git checkout with a commit"
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on this host"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
[ -n "$enter" ] || mkdir -p "$cache" "$logs"

# ---------------------------------------------------------------- clean-up (also on failure)
chroot_pids() {  # processes whose root directory is inside ROOT
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$root" | "$root"/*) echo "${p#/proc/}" ;; esac
  done
}
mounts_under() {  # mount points inside ROOT, deepest first
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
cleanup() {
  local pids m i
  pids=$(chroot_pids)
  if [ -n "$pids" ]; then
    say "killing processes left in the root: $(echo $pids)"
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 50); do [ -z "$(chroot_pids)" ] && break; sleep 0.1; done
    pids=$(chroot_pids)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    for i in $(seq 50); do [ -z "$(chroot_pids)" ] && break; sleep 0.1; done
  fi
  for m in $(mounts_under); do
    umount "$m" 2>/dev/null || umount -l "$m" || say "cannot unmount $m"
  done
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM HUP

mount_root() {  # what a booted machine has mounted
  # / itself a mount point, as on a booted machine: 'ip netns exec' (the two-host test) runs
  # 'mount --make-rslave /' in its new mount namespace, which fails on a mere directory
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs -o ro sysfs "$root/sys"
  mount -t tmpfs -o mode=755,nosuid,size=10m dev "$root/dev"
  for node in "null c 1 3" "zero c 1 5" "full c 1 7" "random c 1 8" "urandom c 1 9" "tty c 5 0"; do
    local node_args
    read -r -a node_args <<<"$node"
    mknod -m 666 "$root/dev/${node_args[0]}" "${node_args[1]}" "${node_args[2]}" "${node_args[3]}"
  done
  mkdir "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$root/tmp"
  mount -t tmpfs -o mode=755,nosuid,nodev run "$root/run"
  mkdir -p "$root/run/lock" && chmod 1777 "$root/run/lock"
}

# in_root CMD...: CMD in the chroot, own UTS namespace (hostname from /etc/hostname), clean env,
# every signal at its default (a background job's shell ignores SIGINT, and children inherit it)
in_root() {
  unshare --uts -- sh -c 'hostname "$1"; shift; exec chroot "$@"' sh "$short" "$root" \
    env -i --default-signal HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

if [ -n "$enter" ]; then
  [ -d "$root/root" ] || die "no root in $root: run without --enter first"
  cleanup
  short=$(cat "$root/etc/hostname")
  mount_root
  cp -L "$resolv_conf" "$root/etc/resolv.conf"
  [ ${#pytest_args[@]} -gt 0 ] || pytest_args=(bash)
  set +e
  in_root "${pytest_args[@]}"
  exit $?
fi

# ---------------------------------------------------------------- 1. a pristine root
cleanup  # an earlier run that was killed hard may have left mounts
if [ ! -f "$tarball" ]; then
  say "debootstrap --variant=minbase bookworm $mirror (cached afterwards in $tarball)"
  stage=$cache/stage.$$
  rm -rf "$stage"
  debootstrap --variant=minbase bookworm "$stage" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $cache/debootstrap.log"
  tar -C "$stage" --numeric-owner --xattrs -cpf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$stage"
fi
say "unpacking a pristine root into $root"
rm -rf --one-file-system "$root"
mkdir -p "$root"
tar -C "$root" --numeric-owner --xattrs -xpf "$tarball"

# ---------------------------------------------------------------- 2. what a real install has
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb ${mirror%/debian}/debian-security bookworm-security main
deb $mirror bookworm-updates main
EOF
if [ "$hosts_mode" = installer ]; then
  echo "$short" >"$root/etc/hostname"
  cat >"$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$fqdn	$short

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
EOF
else  # as debootstrap left them: no /etc/hosts, this host's /etc/hostname (to measure the difference)
  short=$(cat "$root/etc/hostname")
fi
cp -L "$resolv_conf" "$root/etc/resolv.conf"
# This host's own certificate authorities (a TLS-inspecting egress proxy re-signs https here):
# a site with such a proxy gives every machine its CA, or pip and npm fail certificate checks.
# ca-certificates' postinst (below) adds them to the root's trust store.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
printf '#!/bin/sh\n# fresh-machine-check: a chroot has no init to own daemons\nexit 101\n' \
  >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

mount_root

# ---------------------------------------------------------------- 3. git, 4. the clone
say "installing git and ca-certificates in the root (nothing else: setup.sh must do the rest)"
in_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends git ca-certificates >/dev/null' >"$logs/prepare.log" 2>&1 ||
  die "cannot install git in the root, see $logs/prepare.log"
head=$(git -C "$here" rev-parse HEAD)
git -C "$here" bundle create "$root/root/vault.bundle" HEAD >/dev/null 2>&1
clone() { in_root git -c advice.detachedHead=false clone -q /root/vault.bundle "$1" >>"$logs/prepare.log" 2>&1; }
say "cloning $head ($(git -C "$here" log -1 --format=%s "$head" | cut -c1-60))"

# ---------------------------------------------------------------- 5. the README's commands
declare -A rc wall
run_step() {  # NAME DIR COMMAND...: run in the chroot, log with relative timestamps
  local name=$1 dir=$2 t0 t1
  shift 2
  clone "$dir" || die "git clone into $dir failed, see $logs/prepare.log"
  say "$name: cd $dir && $* (log: $logs/$name.log)"
  t0=$(date +%s.%N)
  set +e
  in_root timeout -k 30 "$step_timeout" sh -c 'cd "$1" && shift && "$@"; rc=$?; echo "cpu of the processes waited for (user, sys):"; times; exit $rc' sh "$dir" "$@" </dev/null 2>&1 |
    T0=$t0 perl -MTime::HiRes=time -ne '$| = 1; printf "%7.1f %s", time - $ENV{T0}, $_' >"$logs/$name.log"
  rc[$name]=${PIPESTATUS[0]}
  set -e
  t1=$(date +%s.%N)
  wall[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
  say "$name: exit ${rc[$name]} after ${wall[$name]} s"
}
for s in $steps; do
  case "$s" in
    demo) run_step demo /root/vault scripts/demo.sh ;;
    test) run_step test /root/vault-test scripts/test.sh "${pytest_args[@]}" ;;
    *) die "unknown step $s (demo, test)" ;;
  esac
done
rm -f "$root/root/vault.bundle"

# ---------------------------------------------------------------- report
echo
echo "== fresh Debian 12 minbase root: $root, commit $head"
echo "== python in the root: $(chroot "$root" /usr/bin/python3 --version 2>&1)," \
  "$(chroot "$root" dpkg-query -W -f='python3.11 ${Version}' python3.11 2>/dev/null || true)"
for s in $steps; do
  echo
  echo "== $s: exit ${rc[$s]}, wall ${wall[$s]} s, log $logs/$s.log"
  head -n -3 "$logs/$s.log" | tail -n 8 | cut -c1-300
  # `times` (run by the step's own shell, not in a subshell, which would count nothing): the
  # shell's line, then its children's
  echo "   cpu of the processes waited for: $(tail -n 1 "$logs/$s.log" | sed -E 's/^ *[0-9.]+ //') (user sys)"
  summary=$(grep -E '[0-9]+ (passed|failed|errors?)\b.* in [0-9.]+s' "$logs/$s.log" | tail -n 1 || true)
  [ -z "$summary" ] && [ "$s" = test ] && echo "   pytest summary: none (pytest did not run to its end)"
  [ -n "$summary" ] && echo "   pytest summary: $(echo "$summary" | sed -E 's/^ *[0-9.]+ //; s/^=+ //; s/ =+$//')"
done
ok=0
for s in $steps; do [ "${rc[$s]}" = 0 ] || ok=1; done
exit $ok
}
