set -u
tar -C build -xJf build/run93.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run93; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 150 build/n93/test_quant_cuda > $R/test_quant.log 2>&1; st "test_quant rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant.log | tr '\n' ' ')"
grep -E 'FAILED|Failure' $R/test_quant.log | head -20
timeout 200 build/n93/test_kernels_cuda --gtest_filter='CudaLinear*:CudaDecoderStack*:CudaElementwise*' > $R/test_kernels.log 2>&1; st "kernels rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_kernels.log | tr '\n' ' ')"
timeout 200 build/n93/test_engine_gpu > $R/test_engine.log 2>&1; st "engine rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_engine.log | tr '\n' ' ')"
M=bench/configs/qwen2.5-7b
b() { timeout 60 build/$1/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 $2 -p 16 -n 128 -b 1 -r 3 > $R/$3.log 2>&1; st "$3 rc=$? $(grep -E '^\| tg' $R/$3.log | tr '\n' ' ')"; }
Q4="--quantization int4 --quant-group-size 128"; Q8="--quantization int8"
for i in 1 2; do b n93 "" bf16_new_$i; b n92 "" bf16_n92_$i; done
for i in 1 2; do TLLM_DEFER_NORM=0 b n93 "$Q8" int8_defer0_$i; b n93 "$Q8" int8_defer1_$i; done
for i in 1; do TLLM_DEFER_NORM=0 b n93 "$Q4" int4_defer0_$i; b n93 "$Q4" int4_defer1_$i; done
st done
cd $OUT && tar czf run93.tgz run93 && rm -rf run93
