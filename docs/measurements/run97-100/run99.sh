set -u
tar -C build -xJf build/run99.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
R=$OUT/run99; mkdir -p $R
t0=$(date +%s); st() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
b() { local v=$1 m=$2 n=$3; shift 3; timeout 60 build/$v/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda --max-model-len 4096 -p 16 -n 128 -r 3 "$@" > $R/$n.log 2>&1; st "$n rc=$? $(grep -E '^\| tg' $R/$n.log | cut -c1-60 | tr '\n' ' ')"; }
ktrace() { local v=$1 n=$2 m=$3; shift 3; CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$R/trace_$n.csv timeout 60 build/$v/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 64 -r 1 "$@" > $R/trace_$n.log 2>&1; st "trace $n rc=$? $(grep -E '^\| tg' $R/trace_$n.log | cut -c1-60 | tr '\n' ' ')"; }
for i in 1 2; do for v in m0 m1 m2 m3; do b $v qwen2.5-7b bf16_b1_${v}_$i -b 1; done; done
for v in m0 m1 m2 m3; do b $v qwen2.5-7b int4_b1_${v} -b 1 --quantization int4 --quant-group-size 128; done
for v in m0 m1 m2 m3; do b $v qwen2.5-7b int8_b1_${v} -b 1 --quantization int8; done
for v in m0 m1 m2 m3; do b $v qwen2.5-7b bf16_b8_${v} -b 8; done
ktrace m3 bf16_m3 qwen2.5-7b
ktrace m3 int4_m3 qwen2.5-7b --quantization int4 --quant-group-size 128
ktrace m1 bf16_m1 qwen2.5-7b
st done
cd $OUT && tar cJf run99.tar.xz run99 && rm -rf run99
