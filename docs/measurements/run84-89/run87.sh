set -u
tar -C build -xJf build/run87.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run87; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
summ() { grep -E '^\[  (PASSED|FAILED)' $1 | tr '\n' ' '; grep -A5 "Failure" $1 | grep -E "^(silu|norm|N=)" | head -8; }
for v in new2 new3; do timeout 150 build/$v/test_quant_cuda > $R/test_quant_$v.log 2>&1; st "test_quant $v rc=$? $(summ $R/test_quant_$v.log)"; done
for v in new2 new3; do timeout 60 build/$v/bench_quant_cuda --quick > $R/bq_$v.log 2>&1; st "bq $v rc=$?"; grep -E "^qgemv_int4_g128|^qgemv_int8_(down|o_proj)|^decode_step" $R/bq_$v.log | awk '{print "   ", $1, $2, $3, $5, $6}'; done
M=bench/configs/qwen2.5-7b
for q in int4 int8; do for v in new new2 new3; do extra=""; [ $q = int4 ] && extra="--quant-group-size 128"; timeout 100 build/$v/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 --quantization $q $extra -p 16 -n 128 -b 1 -r 3 > $R/q_${q}_${v}.log 2>&1; st "$q $v rc=$? $(grep -E '^\| tg' $R/q_${q}_${v}.log | awk -F'|' '{print $5,$7}')"; done; done
st done
cd $OUT && tar czf run87.tgz run87 && rm -rf run87
