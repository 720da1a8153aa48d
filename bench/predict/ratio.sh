#!/usr/bin/env bash
# nt predict against the numpy/scipy baseline (issue #9 item 5), A/B interleaved.
#   bench/predict/ratio.sh [N=4000] [M=1000] [RUNS=3] [MODE=cov] [NT=src/NeuralTangents.Cli/bin/Release/net10.0/nt.dll]
# Same request and data on both sides (bench/predict/baseline.py gen: Dense(512)-Relu-Dense(1), x ~ N(0, 1) of
# dimension 64, 10 outputs, diag_reg 1e-4, nngp + ntk). MODE: cov (t = None, compute_cov), means (t = None, means
# only) or finite (t = 1000, compute_cov; one eigendecomposition per kernel). Prints per run the wall time, the CPU
# time (user + sys, all threads) and the peak memory (max RSS) of each whole process from /usr/bin/time, then the
# medians and the ratios nt / numpy. CPU time is the fairer ratio on a shared machine. The order of the sides rotates
# from round to round; use a multiple of the number of sides for RUNS.
# NT_OTHER=path/to/another/nt.dll (or a native nt executable) adds a third side, "other", run in the same
# interleaving (an A/B of two builds); NT_OTHER2 a fourth, "other2".
set -euo pipefail
N=${1:-4000}; M=${2:-1000}; RUNS=${3:-3}; MODE=${4:-cov}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NT=${5:-$ROOT/src/NeuralTangents.Cli/bin/Release/net10.0/nt.dll}
DIR=${TMPDIR:-/tmp}/nt-predict-bench-$N-$M-$MODE
PY=/usr/bin/python3
# nt runs OpenBLAS' SkylakeX kernels on AVX-512 CPUs when no core type is set (Native.coreTypeToSet); numpy on the
# same library would get whatever OpenBLAS detects (on Emerald Rapids its SSE3 fallback), so give both the same.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -z "${NT_OPENBLAS_CORETYPE:-}" ] \
   && grep -q avx512f /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo && grep -q avx512dq /proc/cpuinfo && grep -q avx512vl /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SkylakeX
  echo "ratio.sh: OPENBLAS_CORETYPE=SkylakeX for both sides (AVX-512 CPU, no core type set)" >&2
fi
[ -f "$DIR/request.json" ] || $PY "$ROOT/bench/predict/baseline.py" gen "$DIR" "$N" "$M" "$MODE"
LOG=$DIR/runs.log; : > "$LOG"
# One nt run: an nt.dll through dotnet, or an executable (a native nt) itself.
nt_run() {
  local name=$1 path=$2
  case "$path" in *.dll) set -- dotnet "$path" ;; *) set -- "$path" ;; esac
  ( cd "$DIR" && /usr/bin/time -f "$name %e %U %S %M" -a -o "$LOG" "$@" predict request.json > /dev/null )
}
# One run of one side, by name.
side() {
  case "$1" in
    nt) nt_run nt "$NT" ;;
    other) nt_run other "$NT_OTHER" ;;
    other2) nt_run other2 "$NT_OTHER2" ;;
    numpy) /usr/bin/time -f "numpy %e %U %S %M" -a -o "$LOG" $PY "$ROOT/bench/predict/baseline.py" run "$DIR" > /dev/null ;;
  esac
}
SIDES=(nt)
[ -n "${NT_OTHER:-}" ] && SIDES+=(other)
[ -n "${NT_OTHER2:-}" ] && SIDES+=(other2)
SIDES+=(numpy)
# The order rotates every round: the first process of a round runs ~0.2-0.3 s slower at N = 4000 (measured with the
# order swapped), which a fixed order would charge to one side.
for i in $(seq "$RUNS"); do
  for j in $(seq 0 $((${#SIDES[@]} - 1))); do
    side "${SIDES[$(( (i - 1 + j) % ${#SIDES[@]} ))]}"
  done
done
$PY - "$LOG" "$N" "$M" "$MODE" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    who, wall, user, sys_, rss = line.split()
    rows.setdefault(who, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024))
print(f"N = {sys.argv[2]}, M = {sys.argv[3]}, mode {sys.argv[4]}: medians of {len(rows['nt'])} interleaved runs")
print("| side | wall (s) | CPU, user + sys (s) | max RSS (MB) |")
print("|---|---|---|---|")
med = {}
for who in rows:
    w, c, r = (st.median(x[i] for x in rows[who]) for i in range(3))
    med[who] = (w, c, r)
    print(f"| {who} | {w:.2f} | {c:.2f} | {r:.0f} |")
for who in rows:
    if who != "numpy":
        print(f"| ratio {who} / numpy | {med[who][0] / med['numpy'][0]:.2f} | {med[who][1] / med['numpy'][1]:.2f} | {med[who][2] / med['numpy'][2]:.2f} |")
PY
