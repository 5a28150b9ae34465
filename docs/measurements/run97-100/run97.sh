set -u
tar -C build -xJf build/run97.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run97; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
b() { local v=$1 m=$2 n=$3; shift 3; timeout 90 build/$v/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 128 -r 3 "$@" > $R/$n.log 2>&1; st "$n rc=$? $(grep -E '^\| tg' $R/$n.log | tr '\n' ' ')"; }
tst() { local n=$1; shift; timeout 120 "$@" > $R/$n.log 2>&1; st "$n rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$n.log | tr '\n' ' ')"; }
tst t_kern_a build/n97a/test_kernels_cuda --gtest_filter='CudaAttention*:CudaDecoderStack*'
tst t_stack_b build/n97b/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
tst t_moe_a build/n97a/test_moe_cuda
tst t_engine_a build/n97a/test_engine_gpu
for i in 1 2; do b n97a qwen2.5-7b s7_a_$i; b n96 qwen2.5-7b s7_base_$i; done
for i in 1 2; do b n97a qwen2.5-0.5b s05_a_$i; b n97b qwen2.5-0.5b s05_b_$i; b n96 qwen2.5-0.5b s05_base_$i; done
b n97a qwen2.5-1.5b s15_a_1; b n97b qwen2.5-1.5b s15_b_1; b n96 qwen2.5-1.5b s15_base_1
b n97a qwen3-30b-a3b moe_a_1; b n97b qwen3-30b-a3b moe_b_1; b n96 qwen3-30b-a3b moe_base_1
# kernel timelines (CUPTI injection) of the landed build
tr() { local n=$1 m=$2; shift 2; CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$R/trace_$n.csv timeout 90 build/n96/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 64 -r 1 "$@" > $R/trace_$n.log 2>&1; st "trace $n rc=$? $(wc -l < $R/trace_$n.csv) $(grep -E '^\| tg' $R/trace_$n.log | tr '\n' ' ')"; }
tr 7b_bf16 qwen2.5-7b
tr 7b_int4 qwen2.5-7b --quantization int4 --quant-group-size 128
tr 7b_int8 qwen2.5-7b --quantization int8
TLLM_DECODER_STACK=0 tr 05_opbyop qwen2.5-0.5b
tr 7b_bf16_b8 qwen2.5-7b -b 8
for v in n97a n97b; do timeout 100 cuobjdump -sass build/$v/tinyllm 2>/dev/null | awk '/Function : /{p=($0 ~ /decoder_stack_kernel/)} p' > $R/sass_stack_$v.txt; st "sass $v $(wc -l < $R/sass_stack_$v.txt) LDL=$(grep -c LDL $R/sass_stack_$v.txt)"; done
st done
cd $OUT && tar cJf run97.tar.xz run97 && rm -rf run97
