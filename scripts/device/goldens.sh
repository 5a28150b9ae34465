#!/usr/bin/env bash
# Runs every golden generator on the GPU machine (torch + transformers + tokenizers there)
# and packs the results into $OUT/goldens.tar.gz. Needs carry: .cache/assets/tokenizers
set -uo pipefail
W=/tmp/goldens
rm -rf $W && mkdir -p $W/tokenizer $W/chat $W/models
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
export PYTHONUNBUFFERED=1
( python3 scripts/goldens/model_goldens.py $W/models 2>&1 | tee $W/models_log.txt ) &
python3 scripts/goldens/tokenizer_goldens.py .cache/assets/tokenizers $W/tokenizer 2>&1 | tee $W/tokenizer/timing.txt
python3 scripts/goldens/chat_goldens.py .cache/assets/tokenizers $W/chat 2>&1 | tee $W/chat/log.txt
wait
rm -f $W/models/model_goldens.tar.gz
tar czf $OUT/goldens.tar.gz -C $W .
ls -la $W/* | head -80
du -sh $OUT/goldens.tar.gz
