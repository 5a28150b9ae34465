#!/usr/bin/env bash
# Run 239 (prepared in session 42, which had no device time, and extended in session 43 with
# the FP8 goldens (qwen3_fp8, qwen3_moe_fp8: HF on the dequantized weights, and transformers'
# own FP8 loading checked against them) and test_quant_cuda; run it first when a GPU is lent,
# an H100 if offered: the open rows of issues #5 and #7 are H100 targets). In one call:
#  1. HF goldens of the two Llama specs (scripts/goldens/model_goldens.py llama3_scaled,
#     llama_bias_hd64): the llama3 RoPE against transformers itself. They come back in
#     $OUT/run239.tar.xz under goldens/; unpack into tests/data/models/ and commit.
#  2. test_engine_gpu with those goldens beside the committed ones (GpuParity, including
#     GpuParity.LlamaLayoutOfTheQwen2Golden and the new llama_bias_hd64 row).
#  3. The issues' open rows: 0.5B bf16 tg b1 (#7, >= 50% of the roofline), 7B pp4096 (#7,
#     >= 75% of the GEMM peak), 7B int4 g128 tg b1 (#5, >= 70%).
#  4. The first GPU rows of a Llama shape (Llama-3.1-8B: tg b1, pp4096) and HF's peer line.
# Build as in the session notes (B=build bash scripts/device/pack.sh; binaries in build/r239).
set -u
source scripts/device/run_lib.sh
run_init run239 "${LIMIT:-480}"
N=build/r239
G=$RUN_DIR/goldens
mkdir -p "$G"
timeout 150 python3 scripts/goldens/model_goldens.py "$G" llama3_scaled,llama_bias_hd64,qwen3_fp8,qwen3_moe_fp8 > "$RUN_DIR/goldens.log" 2>&1
run_log "goldens rc=$? $(grep -E '^(ok|FAILED)' "$RUN_DIR/goldens.log" | paste -sd' ')"
rm -rf "$G/model_goldens.tar.gz" "$G/fp8_dense"
grep -h "^fp8 hf check" "$RUN_DIR/goldens.log"
# The committed goldens plus the new ones, for the GPU parity tests.
M=/tmp/run239_models
rm -rf $M && mkdir -p $M && cp -r tests/data/models/* $M/ && cp -r "$G"/models/* $M/ 2>/dev/null
TLLM_GOLDEN_MODELS=$M RUN_TEST_TIMEOUT=200 run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -h "greedy steps equal" "$RUN_DIR/t_engine.log" | head -12
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
# First GPU rows of a Llama shape, then the issues' rows (H100 targets; on an H200 they are
# the H200 column of docs/performance.md), as far as the limit allows.
RUN_BENCH_TIMEOUT=120 run_bench r239 llama-3.1-8b llama8b_tg_b1 -b 1
run_prefill llama8b_pp4096 $N/tinyllm llama-3.1-8b 4096
run_bench r239 qwen2.5-0.5b 05b_tg_b1 -b 1
RUN_BENCH_TIMEOUT=120 run_bench r239 qwen2.5-7b 7b_int4_tg_b1 -b 1 --quantization int4 --quant-group-size 128
run_prefill 7b_pp4096 $N/tinyllm qwen2.5-7b 4096
timeout 120 python3 scripts/device/hf_peer.py bench/configs/llama-3.1-8b --prefill 4096 --gen 64 > "$RUN_DIR/hf_llama8b.log" 2>&1
run_log "hf llama8b rc=$? $(tail -1 "$RUN_DIR/hf_llama8b.log" | cut -c1-200)"
run_done
