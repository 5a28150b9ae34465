#!/usr/bin/env bash
# Run 234 (session 41, H200): the wgmma prefill attention with a decoupled producer (each
# producer thread's copies arrive on the stage's "full" mbarrier when they land, through
# cp.async.mbarrier.arrive.noinc; K and V with their own full / empty barriers, K released
# once S = Q K^T retires; Q loaded while the first K / V tiles are in flight), against the
# landed kernel (build/r234base: HEAD 5475d39). Hypothesis: with the old producer, tile j+1
# was announced only after the producer had got tile j-1's stage back and issued tile j+2,
# so both consumer warpgroups waited for the producer at every step and their softmaxes
# coincided. Prediction: 7B T=4096 alone 375 -> 300-330 us; 7B pp4096 +1.5-3%.
# Also: ping-pong (TLLM_ATTN_PINGPONG=1) on top of the new producer; ncu of the new kernel.
set -u
source scripts/device/run_lib.sh
run_init run234 "${LIMIT:-580}"
A=build/r234base
N=build/r234new
RUN_TEST_TIMEOUT=150 run_gtest t_attn $N/test_kernels_cuda --gtest_filter='CudaAttention.*'
TLLM_ATTN_PINGPONG=1 RUN_TEST_TIMEOUT=120 run_gtest t_attn_pp $N/test_kernels_cuda \
  --gtest_filter='CudaAttention.Prefill*:CudaAttention.Mixed*:CudaAttention.SlidingWindow'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
for round in 1 2; do
  run_attn_quick base_$round $A
  run_attn_quick new_$round $N
  TLLM_ATTN_PINGPONG=1 run_attn_quick newpp_$round $N
  TLLM_ATTN_SM90_BN=64 run_attn_quick new64_$round $N
done
timeout 150 $N/bench_attention_cuda > "$RUN_DIR/attn_new_full.log" 2>&1
run_log "attn_new_full rc=$? $(grep -c SUMMARY "$RUN_DIR/attn_new_full.log") summaries"
grep SUMMARY "$RUN_DIR/attn_new_full.log"
for round in 1 2; do
  run_prefill 7b_base_$round $A/tinyllm qwen2.5-7b 4096
  run_prefill 7b_new_$round $N/tinyllm qwen2.5-7b 4096
  TLLM_ATTN_PINGPONG=1 run_prefill 7b_newpp_$round $N/tinyllm qwen2.5-7b 4096
  run_prefill 05b_base_$round $A/tinyllm qwen2.5-0.5b 4096
  run_prefill 05b_new_$round $N/tinyllm qwen2.5-0.5b 4096
done
run_prefill 7b16k_base $A/tinyllm qwen2.5-7b 16384
run_prefill 7b16k_new $N/tinyllm qwen2.5-7b 16384
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
run_log "ncu: $NCU"
timeout 120 "$NCU" --set full --import-source no --kernel-name regex:attention_prefill_sm90 --launch-skip 1 --launch-count 1 \
  -o "$RUN_DIR/ncu_new" $N/bench_attention_cuda --quick > "$RUN_DIR/ncu_new.txt" 2>&1
run_log "ncu rc=$?"
"$NCU" --import "$RUN_DIR/ncu_new.ncu-rep" --page details > "$RUN_DIR/ncu_new_details.txt" 2>&1
"$NCU" --import "$RUN_DIR/ncu_new.ncu-rep" --page source --print-source sass --csv > "$RUN_DIR/ncu_new_sass.csv" 2>&1
run_log "ncu export rc=$? $(wc -l < "$RUN_DIR/ncu_new_sass.csv") sass lines"
grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Issued Ipc|No Eligible|Warp Cycles Per Issued|Registers Per|Theoretical Occ|Achieved Occ" \
  "$RUN_DIR/ncu_new_details.txt" | head -30
python3 - "$RUN_DIR/ncu_new_sass.csv" <<'PY' > "$RUN_DIR/ncu_new_top.txt" 2>&1
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
hdr = next((i for i, r in enumerate(rows) if any("Source" == c or c.startswith("Address") for c in r)), None)
if hdr is None:
    print("no header"); print("\n".join(",".join(r) for r in rows[:20])); sys.exit()
h = rows[hdr]; print("columns:", h)
si = next((i for i, c in enumerate(h) if "Sampling (All" in c), None)
src = next((i for i, c in enumerate(h) if c == "Source"), 1)
body = [r for r in rows[hdr + 1:] if len(r) == len(h)]
def num(x):
    try: return float(x.replace(",", ""))
    except: return 0.0
tot = sum(num(r[si]) for r in body) if si is not None else 0
print("total samples", tot)
stall_cols = [i for i, c in enumerate(h) if c.startswith("stall_") or "Stall" in c]
for r in sorted(body, key=lambda r: -num(r[si]))[:45]:
    extra = " ".join(f"{h[i]}={r[i]}" for i in stall_cols if num(r[i]) > 0.05 * num(r[si]))
    print(f"{num(r[si]):8.0f} {100*num(r[si])/max(tot,1):5.1f}%  {r[src][:70]:70s} {extra[:200]}")
PY
head -60 "$RUN_DIR/ncu_new_top.txt"
rm -f "$RUN_DIR/ncu_new.ncu-rep.bak"
run_done
