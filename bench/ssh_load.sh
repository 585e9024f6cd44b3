#!/usr/bin/env bash
# SSH load for scripts/trial.sh (docs/REAL_WORLD.md): CLIENTS loops, each
# logging in with a key and running one command per session (`echo ok`),
# with Debian's OpenSSH client, for SECONDS. A session counts as failed if
# it does not print ok. For an SSH server that forks per connection
# (dropbear, sshd): every session is a fresh child of the process graft
# patches.
#
#   bench/ssh_load.sh PORT SECONDS CLIENTS KEY [USER]
#
# The last line is 'requests=N failed=M'. Every process it starts is
# stopped by PID.
set -u -o pipefail
[ $# -ge 4 ] || { echo "usage: $0 PORT SECONDS CLIENTS KEY [USER]" >&2; exit 2; }
port=$1 seconds=$2 clients=$3 key=$4 user=${5:-root}
command -v ssh >/dev/null || { echo "ssh_load: ssh not found (apt-get install openssh-client)" >&2; exit 2; }
source "$(dirname "$0")/load_lib.sh"
load_setup ssh-load

end=$((SECONDS + seconds))
for c in $(seq "$clients"); do
    ( n=0 bad=0
      while [ $SECONDS -lt $end ]; do
          out=$(timeout 20 ssh -n -i "$key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no \
                    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$user@127.0.0.1" echo ok 2>>"$dir/err.$c")
          n=$((n + 1))
          [ "$out" == ok ] || bad=$((bad + 1))
      done
      echo "$n $bad" >"$dir/count.$c" ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
pids=()
total=0 failed=0
for c in $(seq "$clients"); do
    read -r n bad <"$dir/count.$c" || { n=0 bad=1; }
    total=$((total + n)) failed=$((failed + bad))
done
[ "$failed" -gt 0 ] && sort "$dir"/err.* | uniq -c | sort -rn | head -3 >&2
echo "requests=$total failed=$failed"
