#!/usr/bin/env bash
# The multi-task LoRA recipe (python -m training encoder) on a GPU machine, in one prepared call.
#
#   1. here (CPU):  training/encoder_gpu.sh prepare
#        writes var/gpu/ (ignored, ~57 MB: the device `run` tool carries at most 64 MiB):
#          var/gpu/base/      the installed all-MiniLM-L6-v2 cast to fp16 (45 MB) + tokenizer, and
#                             SOURCE_SHA256: the sha256 of the fp32 weights it came from (the adapter's base)
#          var/gpu/datasets/  train + validation splits of the five training sets (no test split, no Banking77)
#   2. device:      run(command="bash training/encoder_gpu.sh run", carry=["var/gpu"], timeout_s=540)
#        preflight (torch + CUDA, transformers, peft, numpy, safetensors, tqdm), then the full recipe
#        (defaults of EncoderTrainParams: 6000 steps of 32, LoRA r=16 on every block linear, distill 1.0,
#        seed 0; expected a few minutes on one H100/H200-class GPU; the step budget is set by STEPS).
#        Comes back under $OUT: encoders/v1/ (adapter_model.safetensors ~2.6 MB, adapter_config.json,
#        adapter.json with base sha256, device, wall time and validation history, MODEL_CARD.md) and train.log.
#   3. here (CPU):  copy $OUT/encoders/v1 to models/encoders/<next version>/, then retrain every head on the
#        features the service serves and judge it:
#          python -m training defaults --encoder models/encoders/vN      (heads on the adapted features)
#          python -m evaluation int8 --encoder models/encoders/vN --data ../shared/datasets
#          python -m evaluation classify --runtime onnx --quantize --encoder models/encoders/vN
#        Ship the adapter (NLP_ENCODER=models/encoders/vN) only if it beats stock on the acceptance metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-6000}"

prepare() {
    local py="${PYTHON:-/work/main/.venv/bin/python}" data="${DATA:-../shared/datasets}" dest=var/gpu
    rm -rf "$dest" && mkdir -p "$dest/base" "$dest/datasets"
    PYTHONPATH="$PWD" "$py" - "$dest/base" <<'EOF'
import shutil, sys
from pathlib import Path
import torch
from transformers import AutoModel, AutoTokenizer
from nlp_service.config import default_encoder_path
from nlp_service.inference.encoder import weights_sha256
src, dest = Path(default_encoder_path()), Path(sys.argv[1])
AutoModel.from_pretrained(str(src)).to(torch.float16).save_pretrained(str(dest))
AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(dest))
(dest / "SOURCE_SHA256").write_text(weights_sha256(src) + "\n")
EOF
    for task in sentiment emotion; do
        mkdir -p "$dest/datasets/tweeteval_$task"
        cp "$data/tweeteval_$task"/{train,val}_{text,labels}.txt "$dest/datasets/tweeteval_$task/"
    done
    mkdir -p "$dest/datasets"/{goemotions,emobank,semeval2018_ei_reg}
    cp "$data"/goemotions/{train.tsv,dev.tsv,emotions.txt} "$dest/datasets/goemotions/"
    # emobank.csv holds every split: keep the header and the train/dev rows only
    "$py" - "$data/emobank/emobank.csv" "$dest/datasets/emobank/emobank.csv" <<'EOF'
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as src, open(sys.argv[2], "w", newline="", encoding="utf-8") as dst:
    reader = csv.DictReader(src)
    writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
    writer.writeheader()
    writer.writerows(r for r in reader if r["split"] in ("train", "dev"))
EOF
    cp "$data"/semeval2018_ei_reg/EI-reg-En-*-{train,dev}.txt "$dest/datasets/semeval2018_ei_reg/"
    du -sh "$dest"
}

run() {
    local out="${OUT:-out}"
    mkdir -p "$out"
    python - <<'EOF' 2>&1 | tee "$out/preflight.txt"
import importlib, sys
missing = []
for name in ("torch", "transformers", "peft", "numpy", "safetensors", "tqdm"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except ImportError as exc:
        missing.append(f"{name}: {exc}")
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
if missing or not torch.cuda.is_available():
    sys.exit("preflight failed: " + "; ".join(missing or ["no CUDA device"]))
EOF
    python -m training encoder --base var/gpu/base --data var/gpu/datasets --registry "$out" \
        --steps "$STEPS" --device cuda --quiet 2>&1 | tee "$out/train.log"
    ls -la "$out"/encoders/*/
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
