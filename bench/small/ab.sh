#!/usr/bin/env bash
# Small requests (issue #9 item 7): `nt kernel` on the depth-10 ReLU MLP of the README (Dense(512, 1.5, 0.05) + Relu
# ×10, Dense(1)), N inputs of dimension 784 from a .npy file, answered as JSON; one or more builds, runs interleaved.
#   bench/small/ab.sh [RUNS=20] [N=1024] [NAME=PATH ...]
# PATH is an nt executable (a publish folder's `nt`) or an nt.dll (run with `dotnet`); without any, this checkout's
# Release build. Prints per build the median and quartiles of the answer's elapsed_ms and of the whole process's wall
# time. The machines this runs on move by ±20 % and more from minute to minute: compare builds within one call, and
# repeat a call before believing a difference smaller than the quartiles' spread.
set -euo pipefail
RUNS=${1:-20}; N=${2:-1024}; shift $(( $# < 2 ? $# : 2 ))
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIDES=("$@")
[ ${#SIDES[@]} -eq 0 ] && SIDES=("nt=$ROOT/src/NeuralTangents.Cli/bin/Release/net10.0/nt.dll")
DIR=${TMPDIR:-/tmp}/nt-small-bench-$N
mkdir -p "$DIR"
if [ ! -f "$DIR/small.json" ]; then
  /usr/bin/python3 - "$DIR" "$N" <<'PY'
import json, sys, numpy as np
d, n = sys.argv[1], int(sys.argv[2])
np.save(f"{d}/x.npy", np.random.default_rng(0).standard_normal((n, 784)))
dense = lambda k: {"layer": "Dense", "out_dim": k, "W_std": 1.5, "b_std": 0.05}
arch = {"layer": "serial", "layers": [dense(512), {"layer": "Relu"}] * 10 + [dense(1)]}
json.dump({"arch": arch, "x1": "x.npy"}, open(f"{d}/small.json", "w"))
PY
fi
LOG=$DIR/runs.log; : > "$LOG"
for i in $(seq "$RUNS"); do
  for side in "${SIDES[@]}"; do
    name=${side%%=*}; path=$(realpath "${side#*=}")
    case "$path" in *.dll) cmd=(dotnet "$path") ;; *) cmd=("$path") ;; esac
    t0=$(date +%s.%N)
    ms=$( cd "$DIR" && "${cmd[@]}" kernel small.json | grep '"elapsed_ms"' | tr -dc '0-9.' )
    t1=$(date +%s.%N)
    echo "$name $ms $t0 $t1" >> "$LOG"
  done
done
/usr/bin/python3 - "$LOG" "$N" "$RUNS" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    who, ms, t0, t1 = line.split()
    rows.setdefault(who, []).append((float(ms), 1000 * (float(t1) - float(t0))))
def q(xs):
    xs = sorted(xs); k = len(xs)
    return st.median(xs), xs[k // 4], xs[(3 * k) // 4]
print(f"nt kernel, depth-10 ReLU MLP, N = {sys.argv[2]}: {sys.argv[3]} interleaved runs per build")
print("| build | elapsed_ms median (quartiles) | whole process, ms, median (quartiles) |")
print("|---|---|---|")
for who, v in rows.items():
    e, w = q([a for a, _ in v]), q([b for _, b in v])
    print(f"| {who} | {e[0]:.1f} ({e[1]:.1f}–{e[2]:.1f}) | {w[0]:.0f} ({w[1]:.0f}–{w[2]:.0f}) |")
PY
