set -u
tar -C build -xJf build/run100.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run100; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
b() { local v=$1 m=$2 n=$3; shift 3; timeout 60 build/$v/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda --max-model-len 4096 -p 16 -n 128 -r 3 "$@" > $R/$n.log 2>&1; st "$n rc=$? $(grep -E '^\| tg' $R/$n.log | cut -c1-60 | tr '\n' ' ')"; }
tst() { local n=$1; shift; timeout 100 "$@" > $R/$n.log 2>&1; st "$n rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$n.log | tr '\n' ' ')"; }
for i in 1 2; do for v in m0 m4 m6; do b $v qwen2.5-7b bf16_b1_${v}_$i -b 1; done; done
for v in m0 m4 m6; do b $v qwen2.5-7b int4_b1_${v} -b 1 --quantization int4 --quant-group-size 128; done
for v in m0 m4 m6; do b $v qwen2.5-7b bf16_b8_${v} -b 8; done
for v in m4 m6; do tst t_attn_$v build/$v/test_kernels_cuda --gtest_filter='CudaAttention*'; tst t_engine_$v build/$v/test_engine_gpu; done
st done
cd $OUT && tar cJf run100.tar.xz run100 && rm -rf run100
