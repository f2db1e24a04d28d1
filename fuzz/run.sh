#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS, one after the other (they fit 2 cores
# that way), then prints per target: executions, coverage (edges and features), corpus size,
# run time and findings. A target that finds something is reported and the next one runs;
# the script exits 1 at the end if any target found anything or did not run.
#
#   fuzz/run.sh SECONDS [TARGET...]      (all targets when none is named)
#
# Needs cargo-fuzz (installed here from crates.io if missing) and a C++ compiler for
# libFuzzer's runtime. Stable Rust: built with `--sanitizer none` (see FUZZING.md).
# Working corpora grow in fuzz/corpus/<target> (kept between runs; delete it to start from the
# seeds alone), findings land in fuzz/artifacts/<target>/, logs in fuzz/runs/<target>.log.
set -u

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(appspec tar tgz zip pkcs7 deployspec config config_legacy onprem wire scripts_log journal)

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    echo "targets: ${ALL_TARGETS[*]}" >&2
    exit 2
}

[ $# -ge 1 ] || usage
SECONDS_EACH=$1
shift
case "$SECONDS_EACH" in '' | *[!0-9]*) usage ;; esac
[ "$SECONDS_EACH" -ge 1 ] || usage
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
for t in "${TARGETS[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) echo "unknown target: $t" >&2; usage ;; esac
done

# Largest input each target is given. Where the agent itself has a limit, the target enforces
# it in code (appspec: validate's MAX_APPSPEC_BYTES; bundles: the unpack limits) and this only
# bounds how far the fuzzer explores; see FUZZING.md.
max_len() {
    case "$1" in
        appspec | tar | zip | pkcs7) echo 65536 ;;
        tgz | scripts_log) echo 32768 ;;
        onprem) echo 4096 ;;
        *) echo 8192 ;;
    esac
}

FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$FUZZ_DIR")
cd "$REPO" || exit 1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked || exit 1
fi

echo "== building ${#TARGETS[@]} target(s) (cargo fuzz build --sanitizer none)"
build_targets=("${TARGETS[@]}")
if [ ${#TARGETS[@]} -eq ${#ALL_TARGETS[@]} ]; then build_targets=(""); fi
for t in "${build_targets[@]}"; do
    # shellcheck disable=SC2086 # an empty $t builds every target in one cargo run
    cargo fuzz build --sanitizer none $t || { echo "build failed" >&2; exit 1; }
done
BIN_DIR="$FUZZ_DIR/target/x86_64-unknown-linux-gnu/release"

SCRATCH=$(mktemp -d /dev/shm/codedeploy-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
export CD_FUZZ_SCRATCH="$SCRATCH/unpack"

mkdir -p "$FUZZ_DIR/runs"
failed=0
summary=()
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ_DIR/corpus/$t"
    artifacts="$FUZZ_DIR/artifacts/$t"
    log="$FUZZ_DIR/runs/$t.log"
    mkdir -p "$corpus" "$artifacts"
    ls -1 "$artifacts" | sort >"$SCRATCH/before"
    echo "== $t: ${SECONDS_EACH}s, max_len $(max_len "$t")"
    start=$(date +%s)
    # The stack is the 2 MiB every agent thread has (tokio workers, the blocking pool, std
    # threads), so deep recursion fails here as it would in the agent.
    # -timeout: one input taking 10 s is a hang (every parser here is meant to be linear).
    # -rss_limit_mb: libFuzzer's default, named; the harness also caps single allocations.
    (
        ulimit -s 2048
        exec "$BIN_DIR/$t" "$corpus" "$FUZZ_DIR/seeds/$t" \
            -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/"
    ) >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.*corp: ([0-9]+)\/.*/\1/p' <<<"$last")
    new=$(ls -1 "$artifacts" | sort | comm -13 "$SCRATCH/before" -)
    if [ "$rc" -eq 0 ] && [ -z "$new" ]; then
        result="none"
    else
        failed=1
        # Artifact names start with the kind: crash-, timeout-, oom-, slow-unit-.
        kinds=$(sed 's/-[0-9a-f]*$//' <<<"$new" | grep -v '^$' | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
        result="FOUND (exit $rc) ${kinds:-no artifact, see $log}"
        [ -n "$new" ] && sed "s#^#    fuzz/artifacts/$t/#" <<<"$new"
        grep -E '(panicked at|ERROR: libFuzzer|memory allocation of|^SUMMARY)' "$log" | head -5 | sed 's/^/    /'
    fi
    line=$(printf '%-14s execs %10s  exec/s %7s  cov %5s  ft %6s  corpus %5s  rss %4sMB  %4ss  findings: %s' \
        "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$took" "$result")
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary (${SECONDS_EACH}s per target; logs in fuzz/runs/)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "FAILED: at least one target found something or did not run (see above)"
    exit 1
fi
echo "all targets clean"
