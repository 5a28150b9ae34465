set -u
tar -C build -xJf build/run86.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run86; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
summ() { grep -E '^\[  (PASSED|FAILED)' $1 | tr '\n' ' '; grep -E "^\[  FAILED  \]|Failure" $1 | head -8; }
timeout 150 build/new/test_quant_cuda > $R/test_quant.log 2>&1; st "test_quant rc=$? $(summ $R/test_quant.log)"
timeout 150 build/new/test_kernels_cuda --gtest_filter='CudaLinear.*:CudaDecoderStack.*' > $R/test_kernels.log 2>&1; st "test_kernels rc=$? $(summ $R/test_kernels.log)"
timeout 150 build/new/test_engine_gpu > $R/test_engine.log 2>&1; st "test_engine rc=$? $(summ $R/test_engine.log)"
M=bench/configs/qwen2.5-7b
for round in 1 2; do for q in int4 int8; do for v in base varD new; do extra=""; [ $q = int4 ] && extra="--quant-group-size 128"; timeout 100 build/$v/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 --quantization $q $extra -p 16 -n 128 -b 1 -r 3 > $R/q_${q}_${v}_$round.log 2>&1; st "$q $v r$round rc=$? $(grep -E '^\| tg' $R/q_${q}_${v}_$round.log | awk -F'|' '{print $5,$7}')"; done; done; done
st done
cd $OUT && tar czf run86.tgz run86 && rm -rf run86
