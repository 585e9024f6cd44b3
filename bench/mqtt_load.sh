#!/usr/bin/env bash
# MQTT load for scripts/trial.sh (docs/REAL_WORLD.md), with Debian's
# mosquitto-clients: one mosquitto_sub per stream receives what one
# mosquitto_pub -l publishes at QoS 1 (numbered messages at a steady rate), and
# a mosquitto_pub -m per round connects anew, so the broker sees both
# long-lived and fresh connections.
#
#   bench/mqtt_load.sh PORT SECONDS [STREAMS] [RATE per stream per second]
#
# The last line is 'requests=N failed=M': N messages published (and
# connections made), M of them not received or not published. Every process
# it starts is stopped by PID.
set -u -o pipefail
[ $# -ge 2 ] || { echo "usage: $0 PORT SECONDS [STREAMS] [RATE]" >&2; exit 2; }
port=$1 seconds=$2 streams=${3:-4} rate=${4:-500}
for tool in mosquitto_pub mosquitto_sub python3; do
    command -v $tool >/dev/null || { echo "mqtt_load: $tool not found (apt-get install mosquitto-clients)" >&2; exit 2; }
done
source "$(dirname "$0")/load_lib.sh"
load_setup mqtt-load

# Subscribers first; each is ready once it has received its stream's probe.
for s in $(seq "$streams"); do
    mosquitto_sub -p "$port" -h 127.0.0.1 -q 1 -t "trial/load/$s" -i "trial-sub-$s-$$" >"$dir/got.$s" 2>"$dir/sub.$s.err" &
    pids+=($!)
done
for s in $(seq "$streams"); do
    for _ in $(seq 100); do
        mosquitto_pub -p "$port" -h 127.0.0.1 -q 1 -t "trial/load/$s" -m probe 2>/dev/null
        grep -q '^probe$' "$dir/got.$s" && break
        sleep 0.1
    done
    grep -q '^probe$' "$dir/got.$s" || { echo "mqtt_load: subscriber $s received nothing" >&2; echo "requests=0 failed=1"; exit 1; }
done

# Long-lived publishers: numbered lines at RATE per second for SECONDS.
for s in $(seq "$streams"); do
    python3 -u -c '
import sys, time
rate, seconds, stream = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
start, n = time.monotonic(), 0
while time.monotonic() - start < seconds:
    n += 1
    print(f"{stream}.{n}")
    if n % 50 == 0:
        time.sleep(max(0, start + n / rate - time.monotonic()))
print(n, file=sys.stderr)
' "$rate" "$seconds" "$s" 2>"$dir/sent.$s" |
        mosquitto_pub -p "$port" -h 127.0.0.1 -q 1 -t "trial/load/$s" -l -i "trial-pub-$s-$$" 2>"$dir/pub.$s.err" &
    pids+=($!)
done
# Fresh connections: one publish each, as long as the streams run.
fresh=0 fresh_failed=0
end=$(( $(date +%s) + ${seconds%.*} ))
while [ "$(date +%s)" -lt "$end" ]; do
    fresh=$((fresh + 1))
    timeout 10 mosquitto_pub -p "$port" -h 127.0.0.1 -q 1 -t trial/fresh -m "fresh $fresh" 2>>"$dir/fresh.err" ||
        fresh_failed=$((fresh_failed + 1))
done
for p in "${pids[@]:$streams}"; do wait "$p" || fresh_failed=$((fresh_failed + 1)); done   # a publisher that failed
sleep 1   # the last QoS 1 messages in flight to the subscribers

sent=0 failed=$fresh_failed
for s in $(seq "$streams"); do
    n=$(grep -x '[0-9]*' "$dir/sent.$s")
    [ -n "$n" ] || { failed=$((failed + 1)); continue; }   # its generator did not finish (the publisher died)
    got=$(grep "^$s\." "$dir/got.$s" | sort -u | grep -c .)
    sent=$((sent + n))
    [ "$got" -ge "$n" ] || failed=$((failed + n - got))
done
cat "$dir"/pub.*.err "$dir"/fresh.err >&2 2>/dev/null
echo "requests=$((sent + fresh)) failed=$failed"
