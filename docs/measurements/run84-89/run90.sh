set -u
tar -C build -xJf build/run90.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
mkdir -p $OUT/run90
timeout 150 build/t90/test_quant_cuda > $OUT/run90/test_quant.log 2>&1; echo "rc=$?"
grep -E "^\[  (PASSED|FAILED)|KL|Failure" $OUT/run90/test_quant.log | head -30
