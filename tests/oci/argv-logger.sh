#!/bin/sh
# An OCI runtime that only logs how it is called, then execs the real one: put it where a
# caller expects runc (containerd's shim: `ctr run --runc-binary`, podman: `--runtime`) to
# see the command-line contract the caller relies on.
#
# Environment (the caller passes its environment through to the runtime; the test harness
# writes a two-line wrapper that sets these and execs this script):
#   OCI_ARGV_LOG   the log file; each invocation appends one record (below)
#   OCI_RUNTIME    the runtime to exec afterwards (e.g. /usr/sbin/runc)
# Per invocation it appends, as one write (records of concurrent calls do not interleave):
#   argv: the arguments, each in single quotes
#   cwd:  the working directory
#   fds:  what descriptors 0, 1 and 2 are (a pipe, a pty, /dev/null, a fifo path)
#   env:  the names (not values) of the environment variables, sorted
# and, the first time it sees a bundle (`create`/`run`: --bundle, or the cwd), copies its
# config.json to LOGDIR/config.ID.json; for `exec`, copies the --process file to
# LOGDIR/process.ID.N.json.
set -eu
: "${OCI_ARGV_LOG:?OCI_ARGV_LOG (the log file) is not set}"
: "${OCI_RUNTIME:?OCI_RUNTIME (the runtime to exec) is not set}"
logdir=$(dirname "$OCI_ARGV_LOG")

quoted=""
verb=""
bundle=""
process=""
prev=""
for a in "$@"; do
  quoted="$quoted '$a'"
  case "$prev" in
    --bundle|-b) bundle=$a ;;
    --process|-p) process=$a ;;
  esac
  case "$a" in
    --bundle=*) bundle=${a#--bundle=} ;;
    --process=*) process=${a#--process=} ;;
  esac
  # The verb is the first argument that is not a global flag or a global flag's value.
  if [ -z "$verb" ]; then
    case "$a" in
      -*) ;;
      *) case "$prev" in --root|--log|--log-format|--criu|--rootless) ;; *) verb=$a ;; esac ;;
    esac
  fi
  prev=$a
done
# The container id is the last argument of every verb the callers use (kill's is followed
# by the signal: `kill ID SIG`).
id=""
if [ $# -gt 0 ]; then
  eval "id=\${$#}"
  if [ "$verb" = kill ] && [ $# -gt 1 ]; then
    n=$(($# - 1))
    eval "id=\${$n}"
  fi
fi

fd() { readlink "/proc/$$/fd/$1" 2>/dev/null || echo closed; }
record="argv:$quoted
cwd: $(pwd)
fds: 0=$(fd 0) 1=$(fd 1) 2=$(fd 2)
env: $(env | sed 's/=.*//' | sort | tr '\n' ' ')
"
printf '%s\n' "$record" >>"$OCI_ARGV_LOG"

case "$verb" in
  create|run)
    [ -n "$bundle" ] || bundle=$(pwd)
    cfg="$logdir/config.$id.json"
    if [ -f "$bundle/config.json" ] && [ ! -e "$cfg" ]; then
      cp "$bundle/config.json" "$cfg"
    fi
    ;;
  exec)
    if [ -n "$process" ] && [ -f "$process" ]; then
      n=0
      while [ -e "$logdir/process.$id.$n.json" ]; do n=$((n + 1)); done
      cp "$process" "$logdir/process.$id.$n.json"
    fi
    ;;
esac

exec "$OCI_RUNTIME" "$@"
