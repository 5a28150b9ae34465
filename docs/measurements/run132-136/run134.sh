#!/usr/bin/env bash
# Run 134: the logits gather skipped where the logits rows are the batch's rows (build/pg =
# commit f13b6da + that change) against f13b6da itself (build/rl), alternated: 7B int4 g128
# and bf16 tg b1.
set -u
source scripts/device/run_lib.sh
run_init run134 "${LIMIT:-300}"
q4="--quantization int4 --quant-group-size 128"
for round in 1 2; do
  for v in rl pg; do run_bench $v qwen2.5-7b "s7_int4_${v}_$round" -b 1 $q4; done
done
for v in rl pg; do run_bench $v qwen2.5-7b "s7_bf16_$v" -b 1; done
run_done
