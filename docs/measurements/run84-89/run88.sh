set -u
tar -C build -xJf build/run88.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run88; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 100 build/final/test_quant_cuda > $R/test_quant.log 2>&1; st "test_quant rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant.log | tr '\n' ' ')"
timeout 60 build/final/bench_quant_cuda --quick > $R/bq_final.log 2>&1; st "bq rc=$?"
M=bench/configs/qwen2.5-7b
timeout 150 build/final/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 8192 --quantization int4 --quant-group-size 128 -p 4096 -n 128 -b 1,8 -r 2 > $R/bench_7b_int4.log 2>&1; st "int4 final rc=$?"; grep -E "^\| (pp|tg)|limits" $R/bench_7b_int4.log
timeout 120 build/final/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 8192 --quantization int8 -p 512 -n 128 -b 1,8 -r 2 > $R/bench_7b_int8.log 2>&1; st "int8 final rc=$?"; grep -E "^\| (pp|tg)|limits" $R/bench_7b_int8.log
for q in int4 int8; do extra=""; [ $q = int4 ] && extra="--quant-group-size 128"; timeout 100 build/base/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 --quantization $q $extra -p 16 -n 128 -b 1,8 -r 2 > $R/base_${q}.log 2>&1; st "$q base rc=$?"; grep -E "^\| tg" $R/base_${q}.log; done
st done
cd $OUT && tar czf run88.tgz run88 && rm -rf run88
