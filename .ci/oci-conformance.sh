#!/usr/bin/env bash
# Runs the OCI runtime conformance suite (opencontainers/runtime-tools `validation/`) against
# an OCI runtime and prints a per-file pass/fail/skip table (issue 14). NOT run by CI: the
# suite cannot be fetched at test time here, so bring a checkout of it yourself.
#
# Usage: .ci/oci-conformance.sh [--no-unified] RUNTIME [TEST...]
#   RUNTIME       the runtime binary (a path, or a name in PATH): runc, crun,
#                 target/release/cellblock
#   TEST          names of validation files to run (e.g. `create hooks_stdin`); all 58 when
#                 none are given
#   --no-unified  run the suite in a private mount namespace with /sys/fs/cgroup/unified
#                 unmounted: crun refuses hybrid cgroups ("cgroups in hybrid mode not
#                 supported") while the empty v2 hierarchy is mounted there
#
# Environment:
#   RUNTIME_TOOLS  a checkout of github.com/opencontainers/runtime-tools at 260e151 (its last
#                  commit that builds with Go 1.19, Debian 12's golang-go), with its vendor/
#                  directory; default /var/tmp/runtime-tools. The validation binaries
#                  (validation/*/*.t) and `runtimetest` are built there, offline
#                  (-mod=vendor, GOPROXY=off), when missing.
#   OUT            where each file's TAP output goes (OUT/NAME.tap); default a temp dir
#   TIMEOUT        seconds allowed per file (default 300); a file that overruns fails
#
# A file counts as
#   pass  its binary exited 0, printed a plan, and every test line is `ok` (some may be
#         `# SKIP`, as long as one is not);
#   skip  every test line is `ok ... # SKIP` (the suite skips a whole file this way when the
#         host lacks what it tests), or the file exited 0 with the plan 1..0 and no result
#         (TAP's whole-file skip; the suite's hook files end so whatever the runtime did),
#         or it exited 0 without printing any TAP (process_rlimits_fail, see the docs);
#   fail  anything else: a `not ok`, a non-zero exit, no plan, fewer results than planned, a
#         timeout.
# Exit status: 0 when no file failed, 1 otherwise, 2 on a usage or setup error.
#
# Example: RUNTIME_TOOLS=/var/tmp/runtime-tools .ci/oci-conformance.sh --no-unified crun
set -euo pipefail

die() { echo "oci-conformance.sh: $*" >&2; exit 2; }

NO_UNIFIED=
if [ "${1:-}" = --no-unified ]; then
  NO_UNIFIED=1
  shift
fi
[ $# -ge 1 ] || die "usage: $0 [--no-unified] RUNTIME [TEST...]"
RUNTIME_BIN=$1
shift

if [ -n "$NO_UNIFIED" ] && [ -z "${OCI_CONFORMANCE_PRIVATE:-}" ]; then
  [ "$(id -u)" -eq 0 ] || die "--no-unified needs root (a private mount namespace)"
  # unshare(1) makes the new namespace's mounts private, so the umount stays in it.
  exec env OCI_CONFORMANCE_PRIVATE=1 unshare -m -- sh -c \
    'if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 2; fi
     exec "$@"' sh "$0" --no-unified "$RUNTIME_BIN" "$@"
fi

case $RUNTIME_BIN in
  */*) [ -x "$RUNTIME_BIN" ] || die "$RUNTIME_BIN is not an executable"
       RUNTIME_BIN=$(cd "$(dirname "$RUNTIME_BIN")" && pwd)/$(basename "$RUNTIME_BIN") ;;
  *) RUNTIME_BIN=$(command -v "$RUNTIME_BIN") || die "$1 is not in PATH" ;;
esac

RT=${RUNTIME_TOOLS:-/var/tmp/runtime-tools}
[ -d "$RT/validation" ] && [ -d "$RT/vendor" ] ||
  die "$RT is not a runtime-tools checkout with vendor/ (set RUNTIME_TOOLS; see docs/oci-conformance.md)"
TIMEOUT=${TIMEOUT:-300}
OUT=${OUT:-$(mktemp -d /tmp/oci-conformance.XXXXXX)}
mkdir -p "$OUT"

# Build what is missing, offline, the way the suite's Makefile does (runtimetest static).
(
  cd "$RT"
  export GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local
  command -v go >/dev/null || die "go is missing (apt-get install golang-go)"
  if [ ! -x runtimetest ]; then
    go build -tags "netgo osusergo" -ldflags "-extldflags -static" -o runtimetest ./cmd/runtimetest
  fi
  for src in validation/*/*.go; do
    case $src in validation/util/*) continue ;; esac
    [ -x "${src%.go}.t" ] || go build -o "${src%.go}.t" "$src"
  done
) || die "building the validation binaries in $RT failed"

if [ $# -gt 0 ]; then
  TESTS=("$@")
else
  TESTS=()
  for src in "$RT"/validation/*/*.go; do
    case $src in */validation/util/*) continue ;; esac
    TESTS+=("$(basename "${src%.go}")")
  done
fi

# The suite's cgroup tests use these paths (absolute, and relative to the runtime's cgroup);
# a runtime that fails them can leave the directories behind: the new ones are removed at
# the end (rmdir: only when empty).
suite_cgroups() {
  find /sys/fs/cgroup -maxdepth 7 -type d \( -name cgrouptest -o -name testdir -o \
    -path '*/testdir/cgrouptest/container' \) 2>/dev/null | sort -r
}
cgroups_before=$(suite_cgroups)

printf '%-42s %-5s %5s %5s %5s  %s\n' file result ok notok skip note
pass=0 fail=0 skip=0
for t in "${TESTS[@]}"; do
  bin=$RT/validation/$t/$t.t
  [ -x "$bin" ] || die "no validation file named $t"
  tap=$OUT/$t.tap
  rc=0
  # The suite finds its rootfs tarball and runtimetest in the working directory.
  (cd "$RT" && RUNTIME=$RUNTIME_BIN timeout -k 10 "$TIMEOUT" "$bin") >"$tap" 2>&1 || rc=$?
  ok=$(grep -cE '^ok [0-9]+' "$tap" || true)
  skipped=$(grep -ciE '^ok [0-9]+[^#]*# skip' "$tap" || true)
  notok=$(grep -cE '^not ok [0-9]+' "$tap" || true)
  planned=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$tap" | tail -n1)
  note=
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    result=fail note="timed out after ${TIMEOUT}s"
  elif [ "$notok" -gt 0 ]; then
    result=fail note=$(grep -m1 -E '^not ok' "$tap" | cut -c1-100)
  elif [ "$rc" -ne 0 ]; then
    why=$(grep -m1 -oE 'msg="[^"]{0,90}' "$tap" | sed 's/^msg="//' || true)
    [ -n "$why" ] || why=$(grep -vE '^(TAP version|ok|not ok|1\.\.|#| |\{|\})' "$tap" | head -n1 | cut -c1-90)
    result=fail note="exit $rc: $why"
  elif [ -z "$planned" ] && [ "$ok" -eq 0 ] && ! grep -q '^TAP version' "$tap"; then
    # No TAP at all and exit 0: process_rlimits_fail ends so when the runtime refused its
    # bad rlimit (as it must); counted as a skip, as the suite's own harness would.
    result=skip note="exit 0 without TAP output"
  elif [ -z "$planned" ]; then
    result=fail note="no TAP plan"
  elif [ "$planned" -eq 0 ] && [ "$ok" -eq 0 ]; then
    # A plan of 1..0 is TAP's "skip the whole file"; the hook files of this suite also end
    # this way without having checked anything (see docs/oci-conformance.md).
    result=skip note="1..0: no test ran"
    diag=$(grep -m1 -oE '"error": "[^"\\]{0,70}' "$tap" | sed 's/"error": "//' || true)
    [ -z "$diag" ] || note="$note; its diagnostic: $diag"
  elif [ "$((ok + notok))" -lt "$planned" ]; then
    result=fail note="$((ok + notok)) results of $planned planned"
  elif [ "$ok" -gt 0 ] && [ "$skipped" -eq "$ok" ]; then
    result=skip note=$(grep -m1 -iE '# skip' "$tap" | sed -E 's/^ok [0-9]+ *# *[Ss][Kk][Ii][Pp] *//' | cut -c1-90)
  else
    result=pass
  fi
  case $result in pass) pass=$((pass + 1)) ;; fail) fail=$((fail + 1)) ;; skip) skip=$((skip + 1)) ;; esac
  printf '%-42s %-5s %5s %5s %5s  %s\n' "$t" "$result" "$ok" "$notok" "$skipped" "$note"
done
suite_cgroups | while read -r d; do
  grep -qxF "$d" <<<"$cgroups_before" || rmdir "$d" 2>/dev/null ||
    echo "oci-conformance.sh: left behind: $d" >&2
done
echo "runtime $RUNTIME_BIN${NO_UNIFIED:+ (private mount namespace, /sys/fs/cgroup/unified unmounted)}:" \
  "$pass pass, $fail fail, $skip skip of ${#TESTS[@]} files; TAP output in $OUT"
[ "$fail" -eq 0 ]
