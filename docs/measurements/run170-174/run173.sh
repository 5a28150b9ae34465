#!/usr/bin/env bash
# Run 173 (session 25): the q|k|v rotation epilogue above 8 tokens, now launching the
# attention after its blocks' epilogue instead of at entry (run 172: launched at entry, the
# 1.5B attention took 3.5 us more per layer at batch 32). The rotation test, then rows
# alternated against run 169's build and this build with TLLM_FUSED_ROPE=0, 2 rounds.
set -u
source scripts/device/run_lib.sh
run_init run173 "${LIMIT:-500}"
B=build/r173
RUN_TEST_TIMEOUT=150 run_gtest t_rope $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearRopeKvWriteMatchesUnfused'
for r in 1 2; do
  for mb in qwen2.5-0.5b:16 qwen2.5-0.5b:32 qwen2.5-1.5b:16 qwen2.5-1.5b:32 qwen2.5-7b:16; do
    m=${mb%:*} b=${mb#*:}
    run_bench r169 $m ${m}_b${b}_r169_$r -b $b
    run_bench r173 $m ${m}_b${b}_r173_$r -b $b
    TLLM_FUSED_ROPE=0 run_bench r173 $m ${m}_b${b}_r173off_$r -b $b
  done
done
run_trace 15_b32 $B/tinyllm qwen2.5-1.5b -b 32
run_done
