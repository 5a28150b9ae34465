set -u
tar -C build -xJf build/run89.tar.xz
export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64
R=$OUT/run89; mkdir -p $R
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for q in int4; do
  timeout 200 "$NCU" --clock-control none --graph-profiling node --metrics gpu__time_duration.sum \
    --launch-skip 3000 --launch-count 520 --csv --page raw --print-units base \
    build/final/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --quantization $q --quant-group-size 128 \
    -p 16 -n 40 -b 1 -r 1 --max-model-len 2048 > $R/ncu_$q.csv 2> $R/ncu_$q.err
  echo "ncu $q rc=$?"
  python3 - $R/ncu_$q.csv <<'PY'
import csv, sys, collections
rows = list(csv.reader(open(sys.argv[1])))
hdr = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if hdr is None: print("  no ncu rows"); sys.exit()
h = rows[hdr]; ki = h.index("Kernel Name"); ti = h.index("gpu__time_duration.sum")
tot = collections.defaultdict(lambda: [0, 0.0])
for r in rows[hdr + 2:]:
    try: v = float(r[ti].replace(",", ""))
    except: continue
    k = r[ki][:110]; tot[k][0] += 1; tot[k][1] += v
s = sum(v[1] for v in tot.values()); n = sum(v[0] for v in tot.values())
print(f"  {n} kernels, {s/1e3:.1f} us total")
for k, (c, v) in sorted(tot.items(), key=lambda x: -x[1][1])[:24]:
    print(f"  {v/1e3:9.1f} us {c:5d} x {v/c/1e3:7.2f} us  {k}")
PY
done
tail -3 $R/ncu_int4.err
cd $OUT && tar czf run89.tgz run89 && rm -rf run89
