# Shared by the load helpers of scripts/trial.sh (bench/*_load.sh): source it,
# then `load_setup NAME`: a work directory in $dir and the list $pids of the
# processes started (append each), every one stopped by PID and the
# directory removed on exit, ^C included.
load_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$dir"
}
load_setup() {
    dir=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 2
    pids=()
    trap load_cleanup EXIT
    trap 'exit 130' INT TERM
}
