set -u
tar -C build -xJf build/run92.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run92; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 150 build/n92/test_quant_cuda > $R/test_quant.log 2>&1; st "test_quant rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/test_quant.log | tr '\n' ' ')"
grep -E 'FAILED|Failure|KL' $R/test_quant.log | head -30
M=bench/configs/qwen2.5-7b
b() { timeout 60 build/$1/tinyllm bench --model $M --load-format dummy --device cuda --max-model-len 4096 $2 -p 16 -n 128 -b 1 -r 3 > $R/$3.log 2>&1; st "$3 rc=$? $(grep -E '^\| tg' $R/$3.log | tr '\n' ' ')"; }
Q4="--quantization int4 --quant-group-size 128"; Q8="--quantization int8"
for i in 1 2; do b n92 "$Q4" int4_new_$i; b n91 "$Q4" int4_n91_$i; b final "$Q4" int4_base_$i; done
for i in 1 2; do b n92 "$Q8" int8_new_$i; b final "$Q8" int8_base_$i; done
st done
cd $OUT && tar czf run92.tgz run92 && rm -rf run92
