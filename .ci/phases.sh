# Wall time of each CI phase, printed as it ends and again all together when the
# script exits, pass or fail (a failed phase is listed with its time so far): the
# whole run must stay within 15 minutes on 2 cores and 8 GB.
# Source it from a `set -e` script and run each phase as `phase NAME COMMAND...`.

PHASES=()
CURRENT_PHASE=""
CURRENT_STARTED=0

phase() {
    CURRENT_PHASE="$1"
    CURRENT_STARTED=$SECONDS
    shift
    echo "== ${CURRENT_PHASE}" >&2
    "$@"
    PHASES+=("$(printf '%-9s %5d s' "$CURRENT_PHASE" $((SECONDS - CURRENT_STARTED)))")
    echo "== ${CURRENT_PHASE} took $((SECONDS - CURRENT_STARTED)) s" >&2
    CURRENT_PHASE=""
}

report_phases() {
    local status=$?
    if [ -n "$CURRENT_PHASE" ]; then
        PHASES+=("$(printf '%-9s %5d s  (failed)' "$CURRENT_PHASE" $((SECONDS - CURRENT_STARTED)))")
    fi
    echo "== phase times (exit status ${status})" >&2
    local line
    for line in "${PHASES[@]+"${PHASES[@]}"}"; do
        echo "   ${line}" >&2
    done
    printf '   %-9s %5d s\n' total "$SECONDS" >&2
    return "$status"
}

trap report_phases EXIT
