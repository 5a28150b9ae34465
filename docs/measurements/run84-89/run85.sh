set -u
tar -C build -xJf build/run85.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run85; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 100 build/varD/test_quant_cuda > $R/test_quant_varD.log 2>&1; st "test varD rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant_varD.log | tr '\n' ' ')"
grep -E "Failure|FAILED|Expected|Which is" $R/test_quant_varD.log | head -10
M=bench/configs/qwen2.5-7b
for round in 1 2; do for q in int4 int8; do for v in base varB varD; do extra=""; [ $q = int4 ] && extra="--quant-group-size 128"; timeout 100 build/$v/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 --quantization $q $extra -p 16 -n 128 -b 1 -r 3 > $R/q_${q}_${v}_$round.log 2>&1; st "$q $v r$round rc=$? $(grep -E '^\| tg' $R/q_${q}_${v}_$round.log | awk -F'|' '{print $5,$7}')"; done; done; done
timeout 200 build/varD/bench_quant_cuda > $R/bq_varD_full.log 2>&1; st "bq full varD rc=$?"
grep -E "^decode" $R/bq_varD_full.log | awk '{print "   ", $1, $2, $5}'
st done
cd $OUT && tar czf run85.tgz run85 && rm -rf run85
