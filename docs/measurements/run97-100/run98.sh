set -u
[ -d build/n97a ] || tar -C build -xJf build/run97.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run98; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
b() { local v=$1 m=$2 n=$3; shift 3; timeout 60 build/$v/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 128 -r 3 "$@" > $R/$n.log 2>&1; st "$n rc=$? $(grep -E '^\| tg' $R/$n.log | tr '\n' ' ')"; }
tst() { local n=$1; shift; timeout 100 "$@" > $R/$n.log 2>&1; st "$n rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$n.log | tr '\n' ' ')"; }
ktrace() { local n=$1 m=$2; shift 2; CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$R/trace_$n.csv timeout 60 build/n96/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 64 -r 1 "$@" > $R/trace_$n.log 2>&1; st "trace $n rc=$? $(wc -l < $R/trace_$n.csv) $(grep -E '^\| tg' $R/trace_$n.log | tr '\n' ' ')"; }
for i in 1 2; do b n97a qwen2.5-7b s7_a_$i; b n96 qwen2.5-7b s7_base_$i; done
tst t_kern_a build/n97a/test_kernels_cuda --gtest_filter='CudaAttention*'
tst t_engine_a build/n97a/test_engine_gpu
ktrace 7b_bf16 qwen2.5-7b
ktrace 7b_int4 qwen2.5-7b --quantization int4 --quant-group-size 128
TLLM_DECODER_STACK=0 ktrace 05_opbyop qwen2.5-0.5b
st done
cd $OUT && tar cJf run98.tar.xz run98 && rm -rf run98
