#!/usr/bin/env bash
# Run 221 (session 37): the quantized MoE decode GEMV without its spills. At int4 and one n
# tile it loaded the next k tile's x into a second set of 16 registers (xn), and ptxas spilled
# 48-52 bytes at the 128-register cap; now step m's x pair is replaced by the next tile's right
# after its MMAs have read it (same distance ahead, one set; 8 bytes left in the down form).
# test_moe_cuda, then 30B-A3B int4 g128 tg b1 alternated against the build before (r221a),
# and the A2.7B shape once each. Not kept: 30B-A3B int4 308.4 / 310.1 -> 305.5 / 305.7 tok/s
# (-1.2 to -1.4%), A2.7B 502.8 -> 497.1; the patch is moe_quant_nospill.diff beside this script.
set -u
source scripts/device/run_lib.sh
run_init run221 "${LIMIT:-580}"
B=build/r221
RUN_TEST_TIMEOUT=150 run_gtest t_moe $B/test_moe_cuda
grep -E "FAILED|Failure" -A5 "$RUN_DIR/t_moe.log" | head -30
for round in 1 2; do
  for v in r221a r221; do
    RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b 30b_int4_${v}_$round -b 1 --quantization int4 --quant-group-size 128
  done
done
for v in r221a r221; do
  RUN_BENCH_TIMEOUT=150 run_bench $v qwen1.5-moe-a2.7b a27b_int4_$v -b 1 --quantization int4 --quant-group-size 128
done
run_done
