#!/usr/bin/env bash
# Per-kernel durations of decode steps replayed from the CUDA graph (ncu, each graph node
# timed alone, so PDL overlap is not counted), batch 1, for one or more tinyllm binaries
# (A/B of a change). Usage: ncu_decode.sh MODEL_CONFIG_DIR SKIP BIN [BIN...]
#   SKIP: launches to skip (past prefill and graph capture), e.g. 2900 for the 7B shape;
#   COUNT (env, default 500): launches profiled after them.
set -u
M="$1"; SKIP="$2"; shift 2
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for T in "$@"; do
  csv=$(mktemp)
  timeout 240 "$NCU" --clock-control none --graph-profiling node --metrics gpu__time_duration.sum \
    --launch-skip "$SKIP" --launch-count "${COUNT:-500}" --csv --page raw --print-units base \
    "$T" bench --model "$M" --load-format dummy --device cuda -p 16 -n 40 -b 1 -r 1 --max-model-len 2048 \
    > "$csv" 2>/dev/null
  echo "== $T ($(basename "$M")), ncu rc=$?"
  python3 - "$csv" <<'PY'
import csv, sys, collections
rows = list(csv.reader(open(sys.argv[1])))
hdr = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if hdr is None: print("  no ncu rows"); sys.exit()
h = rows[hdr]; ki = h.index("Kernel Name"); ti = h.index("gpu__time_duration.sum")
tot = collections.defaultdict(lambda: [0, 0.0])
for r in rows[hdr + 2:]:
    try: v = float(r[ti].replace(",", ""))
    except: continue
    k = r[ki][:90]; tot[k][0] += 1; tot[k][1] += v
s = sum(v[1] for v in tot.values()); n = sum(v[0] for v in tot.values())
print(f"  {n} kernels, {s/1e3:.1f} us total")
for k, (c, v) in sorted(tot.items(), key=lambda x: -x[1][1])[:14]:
    print(f"  {v/1e3:9.1f} us {c:5d} x {v/c/1e3:7.2f} us  {k}")
PY
  rm -f "$csv"
done
