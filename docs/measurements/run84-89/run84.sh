set -u
tar -C build -xJf build/run84.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run84; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
for v in varA varB; do timeout 100 build/$v/test_quant_cuda > $R/test_quant_$v.log 2>&1; st "test $v rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant_$v.log | tr '\n' ' ')"; done
for v in base varA varB varC; do timeout 60 build/$v/bench_quant_cuda --quick > $R/bq_$v.log 2>&1; st "bq $v rc=$?"; grep -E "gate_up|down |decode_step" $R/bq_$v.log | grep -v -- "->" | awk "{print \"   \", \$1, \$2, \$5}"; done
M=bench/configs/qwen2.5-7b
for q in int4 int8; do for v in base varA varB varC; do [ $q = int8 ] && [ $v = varC ] && continue; extra=""; [ $q = int4 ] && extra="--quant-group-size 128"; timeout 100 build/$v/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 --quantization $q $extra -p 16 -n 128 -b 1 -r 3 > $R/q_${q}_$v.log 2>&1; st "$q $v rc=$? $(grep -E '^\| tg' $R/q_${q}_$v.log | awk -F'|' '{print $5,$7}')"; done; done
st done
cd $OUT && tar czf run84.tgz run84 && rm -rf run84
