#!/usr/bin/env bash
# Run 136: the session's final build (edcc1ac: strict environment switches in the sm_90
# prefill attention and the stack kernel's readers, the quantized RoPE epilogue): every CUDA
# kernel test, the quantized, MoE and engine suites, a misspelt switch, and the b1 rows.
set -u
source scripts/device/run_lib.sh
run_init run136 "${LIMIT:-420}"
RUN_TEST_TIMEOUT=300 run_gtest t_kernels build/fin19/test_kernels_cuda
run_gtest t_quant build/fin19/test_quant_cuda
run_gtest t_moe build/fin19/test_moe_cuda
run_gtest t_engine build/fin19/test_engine_gpu
TLLM_DECODER_STACK=yes build/fin19/tinyllm bench --model bench/configs/qwen2.5-0.5b --load-format dummy \
  --device cuda -p 16 -n 8 -r 1 > "$RUN_DIR/bad_switch.log" 2>&1
run_log "bad switch rc=$? $(tail -1 "$RUN_DIR/bad_switch.log")"
run_bench fin19 qwen2.5-0.5b s05 -b 1
run_bench fin19 qwen2.5-7b s7 -b 1
run_bench fin19 qwen2.5-7b s7_int4 -b 1 --quantization int4 --quant-group-size 128
run_done
