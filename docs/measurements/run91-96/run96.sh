set -u
tar -C build -xJf build/run96.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run96; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
b() { timeout 70 build/$1/tinyllm bench --model bench/configs/$2 --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 128 -r 3 > $R/$3.log 2>&1; st "$3 rc=$? $(grep -E '^\| tg' $R/$3.log | tr '\n' ' ')"; }
for i in 1 2; do b n96 qwen2.5-0.5b s05_new_$i; b n95 qwen2.5-0.5b s05_base_$i; done
b n96 qwen2.5-1.5b s15_new_1; b n95 qwen2.5-1.5b s15_base_1
timeout 60 build/n96/test_kernels_cuda --gtest_filter='CudaDecoderStack*' > $R/test_stack.log 2>&1; st "stack rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_stack.log | tr '\n' ' ')"
timeout 40 build/n96/test_moe_cuda > $R/test_moe.log 2>&1; st "moe rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_moe.log | tr '\n' ' ')"
b n96 qwen3-30b-a3b moe_new_1; b n95 qwen3-30b-a3b moe_base_1
st done
cd $OUT && tar czf run96.tgz run96 && rm -rf run96
