set -u
tar -C build -xJf build/run91.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run91; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 150 build/n91/test_quant_cuda > $R/test_quant.log 2>&1; st "test_quant rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant.log | tr '\n' ' ')"
grep -E 'FAILED|Failure|KL' $R/test_quant.log | head -30
M=bench/configs/qwen2.5-7b
b() { timeout 60 build/$1/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 $2 -p 16 -n 128 -b 1 -r 3 > $R/$3.log 2>&1; st "$3 rc=$? $(grep -E '^\| tg' $R/$3.log | tr '\n' ' ')"; }
Q4="--quantization int4 --quant-group-size 128"; Q8="--quantization int8"
b n91 "$Q4" int4_new_1; b final "$Q4" int4_base_1; b n91 "$Q4" int4_new_2; b final "$Q4" int4_base_2
b n91 "$Q8" int8_new_1; b final "$Q8" int8_base_1
timeout 200 build/n91/test_engine_gpu > $R/test_engine.log 2>&1; st "engine rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_engine.log | tr '\n' ' ')"
timeout 200 build/n91/test_kernels_cuda --gtest_filter='CudaLinear*:CudaDecoderStack*' > $R/test_kernels.log 2>&1; st "kernels rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_kernels.log | tr '\n' ' ')"
timeout 200 build/n91/test_moe_cuda > $R/test_moe.log 2>&1; st "moe rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_moe.log | tr '\n' ' ')"
b n91 "" bf16_new_1
st done
cd $OUT && tar czf run91.tgz run91 && rm -rf run91
