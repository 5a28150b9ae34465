set -u
tar -C build -xJf build/run95.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run95; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 100 build/n95/test_quant_cuda > $R/test_quant.log 2>&1; st "test_quant rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant.log | tr '\n' ' ')"
timeout 150 build/n95/test_kernels_cuda --gtest_filter='CudaLinear*:CudaElementwise*' > $R/test_kernels.log 2>&1; st "kernels rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_kernels.log | tr '\n' ' ')"
timeout 100 build/n95/test_engine_gpu > $R/test_engine.log 2>&1; st "engine rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_engine.log | tr '\n' ' ')"
grep -E 'FAILED|Failure' $R/*.log | head
b() { timeout 100 build/$1/tinyllm bench --model bench/configs/$2 --load-format dummy --device cuda --max-model-len 4096 $3 -p 16 -n 128 -r 3 > $R/$4.log 2>&1; st "$4 rc=$? $(grep -E '^\| tg' $R/$4.log | tr '\n' ' ')"; }
for i in 1 2; do b n95 qwen2.5-7b "-b 1" b7_new_$i; b n94 qwen2.5-7b "-b 1" b7_n94_$i; done
b n95 qwen2.5-7b "-b 1 --quantization int4 --quant-group-size 128" i4_new_1; b n94 qwen2.5-7b "-b 1 --quantization int4 --quant-group-size 128" i4_n94_1
st done
cd $OUT && tar czf run95.tgz run95 && rm -rf run95
