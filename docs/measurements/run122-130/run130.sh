#!/usr/bin/env bash
# Run 130: the landed block merge (build/bm, up to 8 splits) against the grid merge
# (build/cst) where the splits are 5-8 (contexts 129-256 keys: -d 128), 1.5B and 0.5B.
set -u
source scripts/device/run_lib.sh
run_init run130 "${LIMIT:-200}"
for round in 1 2; do
  for v in cst bm; do run_bench $v qwen2.5-1.5b "s15d128_${v}_$round" -b 1 -d 128 -n 64; done
done
for v in cst bm; do run_bench $v qwen2.5-0.5b "s05d128_$v" -b 1 -d 128 -n 64; done
run_done
