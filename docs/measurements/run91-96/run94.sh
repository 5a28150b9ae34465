set -u
tar -C build -xJf build/run94.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run94; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
b() { timeout 150 build/$1/tinyllm bench --model bench/configs/$2 --load-format dummy --device cuda --max-model-len 4096 $3 -p 16 -n 128 -r 3 > $R/$4.log 2>&1; st "$4 rc=$? $(grep -E '^\| tg' $R/$4.log | tr '\n' ' ')"; }
for i in 1 2; do b n94 qwen2.5-0.5b "-b 1" s05_new_$i; b n92 qwen2.5-0.5b "-b 1" s05_base_$i; done
b n94 qwen2.5-1.5b "-b 1" s15_new_1; b n92 qwen2.5-1.5b "-b 1" s15_base_1
timeout 150 build/n94/test_kernels_cuda --gtest_filter='CudaLinear*:CudaDecoderStack*:CudaElementwise*' > $R/test_kernels.log 2>&1; st "kernels rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_kernels.log | tr '\n' ' ')"
grep -E 'FAILED|Failure' $R/test_kernels.log | head
timeout 120 build/n94/test_quant_cuda > $R/test_quant.log 2>&1; st "test_quant rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant.log | tr '\n' ' ')"
timeout 120 build/n94/test_engine_gpu > $R/test_engine.log 2>&1; st "engine rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_engine.log | tr '\n' ' ')"
timeout 120 build/n94/test_moe_cuda > $R/test_moe.log 2>&1; st "moe rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_moe.log | tr '\n' ' ')"
b n94 qwen2.5-7b "-b 1,8" b7_new_1; b n92 qwen2.5-7b "-b 1,8" b7_base_1
b n94 qwen2.5-7b "-b 1 --quantization int4 --quant-group-size 128" i4_new_1
b n94 qwen2.5-7b "-b 1 --quantization int8" i8_new_1
b n94 qwen3-30b-a3b "-b 1" moe_new_1; b n92 qwen3-30b-a3b "-b 1" moe_base_1
st done
cd $OUT && tar czf run94.tgz run94 && rm -rf run94
