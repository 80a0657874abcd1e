#!/usr/bin/env bash
# Rebuild the committed default models from nothing but packages: the corpus, the
# short-context Whisper (tiny.en's encoder fine-tuned on the corpus's ASR clips, heard
# under its channel conditions and taught from their clean twins; committed as the
# overlay models/whisper-short), its WER against the stock model, the classifier on what
# WHISPER (default: embedded-short, that overlay) hears, and the evaluation report.
# About 75 minutes on a 2-core CPU (SKIP_WHISPER=1 keeps the committed overlay: about
# 50); DEVICE=cuda fine-tunes on a GPU. The teacher's states are kept in $build/teacher-states.pt
# and reused while the corpus and the imported model are the same (most of the fine-tuning's
# time on a CPU).
# Needs: pip install torch==2.13.0 && pip install -e '.[train]', Debian's espeak-ng, sox,
# libsox-fmt-base, asterisk-core-sounds-en-wav (or SOUNDS= a folder of Allison's prompts)
# and asterisk-moh-opsound-wav (or MUSIC= a folder of 16-bit mono WAV tracks).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/defaults}
sounds=${SOUNDS:-/usr/share/asterisk/sounds/en_US_f_Allison}
music=${MUSIC:-/usr/share/asterisk/moh}
device=${DEVICE:-auto}
whisper=${WHISPER:-embedded-short}
mkdir -p "$build"
train() { .venv/bin/amd-train "$@"; }

train corpus --out "$build/corpus" --variants 6 --composed 2000 --seed 1 --asterisk-sounds "$sounds" \
    --music "$music" --force
# SKIP_WHISPER=1 leaves out the Whisper fine-tuning and its WER (about 25 of the 75
# minutes) and keeps the committed models/whisper-short: the classifier and its report
# are made the same way.
if [ "${SKIP_WHISPER:-0}" != 1 ]; then
train import-whisper --out "$build/whisper-hf" --force
train finetune --checkpoint "$build/whisper-hf" --manifest "$build/corpus/asr.csv" \
    --out "$build/whisper-short-hf" --steps 600 --batch-size 16 --lr 5e-5 --ce-weight 1.0 \
    --clean-targets --teacher-cache "$build/teacher-states.pt" --device "$device" --force
# float16 as the embedded model is: the overlay is the encoder's variables that differ.
train export --checkpoint "$build/whisper-short-hf" --out "$build/whisper-short" \
    --quantization float16 --force
train overlay --model "$build/whisper-short" --out models/whisper-short --force
train asr-eval --manifest "$build/corpus/asr.csv" --model embedded --model models/whisper-short \
    --out "$build/asr-eval.json"
# What each hears of the held-out recordings at 2-5 s, which the 2 s clips cannot show
# (an overlay can win on the clips and stop early on whole recordings); about 95 s a model here.
train asr-eval --recordings "$build/corpus/manifest.csv" --model embedded \
    --model models/whisper-short --decoding short --out "$build/asr-eval-recordings.json"
fi
train classifier --manifest "$build/corpus/manifest.csv" --whisper-model "$whisper" \
    --out models/amd-classifier.npz --card models/amd-classifier.md \
    --held-out-model "$build/heldout-classifier.npz" --calibrate --force \
    --source "amd-train corpus --variants 6 --composed 2000 --seed 1 (scripts/train_defaults.sh): the 217 templates of training/data/openers.csv spoken 6 times each and 1,964 distinct texts composed from training/data/grammar.toml (12 classes of greeting and live answer) spoken once each, by piper's joe at three pitches and 36 espeak-ng voices (half of the recordings played 0.88-1.14 times as fast), plus 9 greetings composed of Asterisk's recorded prompts, with 0.1-2 s of leading silence and a beep after 85% of the voicemail greetings (20% of carrier messages and IVRs), through a telephone channel (300-3400 Hz, 8 kHz, peak -30 to -3 dBFS, a fifth through GSM 06.10 and a fifth through AMR-NB, then mu-law or A-law) with one condition each (30% clean, 25% band noise at 10-40 dB SNR, 30% one to three other voices of the same side talking 0-20 dB below the callee (everyday talk from training/data/chatter.txt, a fifth of the time a live answer; never a greeting), 15% Asterisk music-on-hold 5-25 dB below; a quarter of them with 1-5% of 20 ms frames lost); 3,320 recordings; held out: 55 templates and 464 composed texts worded with held-out phrases, spoken only by 10 held-out voices; transcribed by $whisper (embedded-short: the embedded tiny.en with the encoder fine-tuned by this script on the corpus's 2 s ASR clips, each heard under a channel condition drawn as the recordings' are, and trained towards the encoder states of the same clip heard alone)"
# The committed classifier is refit on every recording, held-out ones included; the
# report on the held-out side uses the classifier the same run fit on the training side
# only (--held-out-model), from the same transcripts. --calibrate fits a scale of the
# log-odds per window on the held-out side and gives them to both (the card has a
# split-half check).
train evaluate --manifest "$build/corpus/manifest.csv" --split test --whisper-model "$whisper" \
    --classifier "$build/heldout-classifier.npz" --out "$build/report" --force
mkdir -p docs/img && cp "$build/report/accuracy_by_time.png" "$build/report/reliability.png" docs/img/
