"""``amd-train finetune``: teach Whisper to decode a 2 s clip without 30 s of padding.

Whisper's encoder only ever saw 30 s windows; on a 2 s clip its states drift
and the decoder loops. Following FUTO's whisper-acft, the encoder is trained so
that its states on the clip alone match the states the unchanged model gives
for the same clip padded to 30 s (mean squared error over the clip's frames);
the decoder, which already reads padded states well, is left alone unless
asked. Where a manifest's transcription covers the whole clip, the usual
cross-entropy on the transcript can be added (``ce_weight``).

It runs on transformers' ``Seq2SeqTrainer`` (CPU or CUDA), fully or with LoRA
adapters (peft) that are merged before the checkpoint is saved, so the export
to CTranslate2 sees a plain Whisper model.
"""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    WhisperForConditionalGeneration,
    WhisperTokenizerFast,
)

from bridge.audio.codecs import Encoding
from bridge.audio.resampler import TARGET_RATE
from bridge.engine.asr import WHISPER_INPUT_S
from training.asr_eval import heard_script
from training.conditions import BABBLE, NONE, background_of, mix_below, speech_rms
from training.ct2_export import COPIED_FILES
from training.manifests import AsrManifest, TranscribedRow, read_16k

log = logging.getLogger(__name__)

FRAMES_PER_S = 100  # Whisper's log-mel hop is 10 ms
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


@dataclass(frozen=True)
class FinetuneOptions:
    clip_s: float = 2.0
    steps: int = 500
    batch_size: int = 16
    learning_rate: float = 1e-4
    warmup_steps: int = 20
    lora: bool = False
    lora_rank: int = 32
    train_decoder: bool = False
    acft_weight: float = 1.0
    ce_weight: float = 0.0
    # Clips with people talking less than this many dB below the talker are trained
    # towards an empty transcript (None: never): what Whisper cannot hear, it should not
    # write, rather than guess a greeting or an answer.
    silent_under_talk_db: float | None = None
    # Extra copies of each clip without background, with another such clip mixed
    # ``talk_mix_db`` below it; the teacher's states are those of the clip alone, so
    # the encoder learns to hear the loudest voice and leave out the one behind it.
    talk_mixtures: int = 0
    talk_mix_db: tuple[float, float] = (0.0, 10.0)
    # Clips with a clean twin (asr.csv's clean_path: the talker alone through the same
    # channel) are trained towards the unchanged model's states for the twin, padded to
    # 30 s, instead of their own: the encoder learns to leave the room out.
    clean_targets: bool = False
    # Extra copies of each clip whose talker is known alone (a quiet clip, or the clean
    # twin of a noisy one), with the room of another clip behind it: that clip's
    # recording less its clean twin (G.711 clips without lost frames only, where the
    # difference is the room and not the codec's), shifted in time, at the level it had
    # under its own talker. Trained towards the talker's transcript and clean states: new
    # pairs of talker and room at every copy, so the encoder cannot learn the rooms.
    room_remixes: int = 0
    # Whole-recording windows: each recording of the ``recordings`` manifest (the corpus's
    # manifest.csv) cut once at one of these lengths (drawn per recording), as the service
    # hears a call at an ask: leading silence, the callee's first words, what is behind
    # them. Trained towards the unchanged model's states for the window's clean twin (the
    # recording itself where nothing is behind the callee), padded to 30 s, and the words
    # the unchanged model decodes from them. Empty: 2 s clips only.
    window_lengths: tuple[float, ...] = ()
    # A window's transcript: ``teacher``, the unchanged model's decoding of its clean
    # twin; or ``script``, the recording's own text up to the last of its words that
    # decoding has in order (``asr_eval.heard_script``): the teacher says how far the
    # window goes, the script what is said up to there.
    window_text: str = "teacher"
    # A file that keeps the teacher's states between runs: reused when the model's
    # weights and every clip's teacher input are the same (``teacher_key``), else
    # computed again and the file replaced. None: always computed, never kept.
    teacher_cache: Path | None = None
    seed: int = 1
    device: str = "auto"  # auto, cpu, cuda


@dataclass
class Clip:
    features: np.ndarray  # [mels, frames] of the clip alone, as the runtime computes them
    padded: np.ndarray  # [mels, 3000] of the clip padded to 30 s
    text: str
    quiet_audio: np.ndarray | None = None  # the samples of a clip with no background
    taught_by_twin: bool = False  # ``padded`` is the clip's clean twin's
    talker_audio: np.ndarray | None = None  # the talker alone: the clip if quiet, or its twin
    room_audio: np.ndarray | None = None  # the clip less its twin, where that is the room
    text_from_teacher: bool = False  # a window: its text is what the teacher decodes
    script: str = ""  # a window: everything its recording says


@dataclass
class MixedClip:
    """A quiet clip with another talking below it; trained towards the quiet clip's
    transcript and teacher states (``source`` indexes the clips)."""

    features: np.ndarray
    source: int


def target_text(row: TranscribedRow, silent_under_talk_db: float | None) -> str:
    """The transcript a clip is trained towards: its own, or nothing where people talk
    less than ``silent_under_talk_db`` below the talker."""
    if silent_under_talk_db is None or row.background_db is None:
        return row.text
    talk = background_of(row.condition) == BABBLE
    return "" if talk and row.background_db < silent_under_talk_db else row.text


def load_clips(
    manifest: AsrManifest,
    clip_s: float,
    n_mels: int,
    silent_under_talk_db: float | None = None,
    clean_targets: bool = False,
) -> list[Clip]:
    """Each file cut (or padded with silence) to ``clip_s``; unreadable ones become bad
    rows. With ``clean_targets``, a clip's padded features (the teacher's input) are
    its clean twin's where it has one. A clip keeps its talker alone (for
    ``room_remixes``) where its teacher hears the talker alone, and its room where
    ``room_of`` says that the clip less its twin is the room."""
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor(feature_size=n_mels)
    n = int(clip_s * TARGET_RATE)
    clips = []
    for row, pcm in manifest.clips(clip_s):
        clip = fitted(pcm, n)
        twin = fitted(read_16k(row.clean_path), n) if row.clean_path is not None else None
        teacher = twin if clean_targets and twin is not None else clip
        text = target_text(row, silent_under_talk_db)
        quiet = background_of(row.condition) == NONE
        taught_by_twin = teacher is twin
        clips.append(
            Clip(
                short_features(extractor, clip, clip_s),
                padded_features(extractor, teacher),
                text,
                clip if quiet else None,
                taught_by_twin,
                # the talker alone, where the clip's teacher states are the talker's own
                clip if quiet else twin if taught_by_twin else None,
                clip - twin if twin is not None and room_of(row) else None,
            )
        )
    return clips


def load_windows(
    recordings: AsrManifest, lengths: Sequence[float], n_mels: int, seed: int
) -> list[Clip]:
    """Each recording's first ``lengths`` seconds (one length drawn per recording, the rest
    of a short one silence), taught by its clean twin's window where it has one; the
    text is left for the teacher to decode. Unreadable files become bad rows."""
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor(feature_size=n_mels)
    choices = sorted(lengths)
    windows = []
    for row, pcm in recordings.clips(choices[-1]):
        rng = random.Random(f"{seed}:{row.path.name}:window")
        seconds = rng.choice(choices)
        n = int(seconds * TARGET_RATE)
        clip = fitted(pcm, n)
        teacher = fitted(read_16k(row.clean_path), n) if row.clean_path is not None else clip
        windows.append(
            Clip(
                short_features(extractor, clip, seconds),
                padded_features(extractor, teacher),
                "",
                taught_by_twin=teacher is not clip,
                text_from_teacher=True,
                script=row.text,
            )
        )
    return windows


def fitted(audio: np.ndarray, n: int) -> np.ndarray:
    """``audio`` cut at ``n`` samples, or followed by silence up to them."""
    out = np.zeros(n, np.float32)
    kept = audio[:n]
    out[: len(kept)] = kept
    return out


def short_features(extractor: Any, clip: np.ndarray, seconds: float) -> np.ndarray:
    """The log-mel frames of ``clip`` (``seconds`` long) alone, as the runtime computes them."""
    return np.asarray(extractor(clip)[:, : int(seconds * FRAMES_PER_S)], np.float32)


def padded_features(extractor: Any, teacher: np.ndarray) -> np.ndarray:
    """The log-mel frames of ``teacher`` padded with silence to Whisper's 30 s."""
    padded = fitted(teacher, WHISPER_INPUT_S * TARGET_RATE)
    return np.asarray(extractor(padded)[:, : WHISPER_INPUT_S * FRAMES_PER_S], np.float32)


def positions_of(clip: Clip) -> int:
    """The encoder's output frames for a clip (its convolution halves the frame rate)."""
    return int(clip.features.shape[1]) // 2


G711 = (Encoding.ULAW.value, Encoding.ALAW.value)  # the codec column: "ulaw", "alaw"


def room_of(row: TranscribedRow) -> bool:
    """Whether a recording less its clean twin is its room alone: through G.711 only
    (a mobile codec codes talker and room together, so their difference holds the
    talker's coding error too) and with no frames lost (the twin has its talker there)."""
    return row.clean_path is not None and row.codec in G711 and row.lost_share == 0.0


def room_remixes(clips: Sequence[Clip], copies: int, n_mels: int, seed: int) -> list[MixedClip]:
    """``copies`` new recordings of each clip whose talker is known alone: the talker
    with the room of another clip behind it, shifted in time, as much below the talker
    as it was below its own (the runtime's features)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    talkers = [i for i, c in enumerate(clips) if c.talker_audio is not None and c.text]
    rooms = [j for j, c in enumerate(clips) if c.room_audio is not None]
    if copies <= 0 or not talkers or not rooms:
        return []
    extractor = FeatureExtractor(feature_size=n_mels)
    rng = random.Random(f"{seed}:room-remixes")
    level = {i: speech_rms(a) for i, c in enumerate(clips) if (a := c.talker_audio) is not None}
    out = []
    for i in talkers:
        talker = clips[i].talker_audio
        assert talker is not None
        frames = clips[i].features.shape[1]
        for _ in range(copies):
            j = rng.choice(rooms)
            room = clips[j].room_audio
            assert room is not None
            mixed = with_room(
                talker, room, level[i] / max(level[j], 1e-6), rng.randrange(len(room))
            )
            out.append(MixedClip(extractor(mixed)[:, :frames].astype(np.float32), i))
    return out


def later(talker: np.ndarray, rng: random.Random) -> np.ndarray:
    """``talker`` moved later into its own trailing silence by a random amount, all its
    words kept: which voice starts first must not tell the encoder which one to hear
    (the corpus's clips start at once, a call's callee after up to 2 s)."""
    peak = float(np.max(np.abs(talker))) or 1.0
    loud = np.flatnonzero(np.abs(talker) > 0.05 * peak)
    room = len(talker) - (int(loud[-1]) + 1 if len(loud) else len(talker)) - TARGET_RATE // 20
    return np.roll(talker, rng.randrange(room)) if room > 0 else talker


def talk_mixtures(
    clips: Sequence[Clip], copies: int, db_range: tuple[float, float], n_mels: int, seed: int
) -> list[MixedClip]:
    """``copies`` mixtures of each quiet clip (moved ``later`` at random) with another
    quiet clip (another recording, shifted in time) ``db_range`` dB below it, as the
    runtime's features."""
    from faster_whisper.feature_extractor import FeatureExtractor

    quiet = [i for i, c in enumerate(clips) if c.quiet_audio is not None and c.text]
    if copies <= 0 or len(quiet) < 2:
        return []
    extractor = FeatureExtractor(feature_size=n_mels)
    rng = random.Random(f"{seed}:talk-mixtures")
    out = []
    for i in quiet:
        talker = clips[i].quiet_audio
        assert talker is not None
        frames = clips[i].features.shape[1]
        for _ in range(copies):
            other = clips[rng.choice([j for j in rng.sample(quiet, 2) if j != i])].quiet_audio
            assert other is not None
            behind = np.roll(other, rng.randrange(len(other)))
            mixed = mix_below(later(talker, rng), behind, rng.uniform(*db_range))
            peak = float(np.max(np.abs(mixed))) or 1.0
            mixed = mixed / max(peak, 1.0)  # no louder than full scale
            out.append(MixedClip(extractor(mixed)[:, :frames].astype(np.float32), i))
    return out


def with_room(talker: np.ndarray, room: np.ndarray, gain: float, shift: int) -> np.ndarray:
    """``talker`` with ``room`` (rolled by ``shift`` samples, times ``gain``) behind it,
    brought down to full scale where the sum goes over it."""
    behind = np.resize(np.roll(room, shift), len(talker)) * gain
    mixed = (talker + behind).astype(np.float32)
    return mixed / max(float(np.max(np.abs(mixed))), 1.0)


@contextmanager
def short_context(model: Any, positions: int) -> Iterator[None]:
    """Let transformers' Whisper encoder take ``positions`` frames instead of 1500.

    Its forward pass insists on 30 s of input and adds the whole position
    table; a table cut to the clip's length (the same fixed sinusoids) makes it
    run on the clip alone, as CTranslate2 does. The full table is put back after.
    """
    encoder = model.model.encoder
    full, full_n = encoder.embed_positions, model.config.max_source_positions
    short = torch.nn.Embedding(positions, full.weight.shape[1]).to(full.weight.device)
    short.weight.data.copy_(full.weight.data[:positions])
    short.requires_grad_(False)
    encoder.embed_positions = short
    model.config.max_source_positions = positions
    try:
        yield
    finally:
        encoder.embed_positions = full
        model.config.max_source_positions = full_n


@dataclass
class Teaching:
    """What the unchanged model says of each clip: its encoder states (cut to the clip)
    and, for a clip whose text is the teacher's, the words it decodes (else None)."""

    states: list[Any]
    texts: list[str | None]


TEACHER_MAX_TOKENS = 96  # 5 s of speech is some 20 tokens; more is a decoding loop


def teacher_states(model: Any, clips: Sequence[Clip], batch: int, tokenizer: Any) -> Teaching:
    """The unchanged model's encoder states for each clip padded to 30 s, cut to the clip,
    and its greedy decoding of them where the clip's text is the teacher's."""
    from transformers.modeling_outputs import BaseModelOutput

    model.eval()
    device = next(model.parameters()).device
    taught = Teaching([], [])
    with torch.no_grad():
        for i in range(0, len(clips), batch):
            part = clips[i : i + batch]
            feats = torch.from_numpy(np.stack([c.padded for c in part]))
            full = model.model.encoder(feats.to(device)).last_hidden_state
            taught.states.extend(
                s[: positions_of(c)].to(torch.float16).cpu()
                for s, c in zip(full, part, strict=True)
            )
            texts: list[str | None] = [None] * len(part)
            asked = [k for k, c in enumerate(part) if c.text_from_teacher]
            if asked:
                ids = model.generate(
                    encoder_outputs=BaseModelOutput(last_hidden_state=full[asked]),
                    max_new_tokens=TEACHER_MAX_TOKENS,
                )
                decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
                for k, words in zip(asked, decoded, strict=True):
                    texts[k] = words.strip()
            taught.texts.extend(texts)
            if (i // batch) % 20 == 0:
                log.info("teacher states: %d of %d clips", min(i + batch, len(clips)), len(clips))
    return taught


def teacher_key(checkpoint: Path, clips: Sequence[Clip]) -> str:
    """A digest of everything the teacher's states and texts depend on: the checkpoint's
    weight files, and each clip's padded features (its teacher input), frames kept and
    whether its text is decoded."""
    digest = hashlib.sha256(f"teaching-v2 max_tokens={TEACHER_MAX_TOKENS}".encode())
    for weights in sorted(checkpoint.glob("*.safetensors")) + sorted(checkpoint.glob("*.bin")):
        digest.update(weights.name.encode())
        digest.update(weights.read_bytes())
    for clip in clips:
        digest.update(f"{positions_of(clip)}:{clip.text_from_teacher}".encode())
        digest.update(np.ascontiguousarray(clip.padded, dtype=np.float32).tobytes())
    return digest.hexdigest()


def cached_teacher_states(
    cache: Path | None, key: str, compute: Callable[[], Teaching]
) -> Teaching:
    """``compute()``, or the teaching ``cache`` holds when it was written for ``key``;
    computed teaching is written to ``cache`` (whole or not at all)."""
    if cache is not None and cache.is_file():
        try:
            saved = torch.load(cache, weights_only=True)
        except Exception as exc:  # a truncated or foreign file: compute again
            log.warning("teacher states in %s unreadable (%s): computing them again", cache, exc)
        else:
            if isinstance(saved, dict) and saved.get("key") == key and "texts" in saved:
                log.info("teacher states: %d clips from %s", len(saved["states"]), cache)
                return Teaching(list(saved["states"]), list(saved["texts"]))
            log.info("teacher states in %s are for other clips or weights: computing", cache)
    taught = compute()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.name + ".partial")
        torch.save({"key": key, "states": taught.states, "texts": taught.texts}, partial)
        partial.replace(cache)
    return taught


def finetune(
    checkpoint: Path,
    manifest: AsrManifest,
    out_dir: Path,
    options: FinetuneOptions,
    recordings: AsrManifest | None = None,
) -> dict[str, Any]:
    """Train, merge, write a transformers checkpoint to ``out_dir``; return a summary.
    ``recordings`` (with ``options.window_lengths``) adds whole-recording windows."""
    torch.manual_seed(options.seed)
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = WhisperForConditionalGeneration.from_pretrained(str(checkpoint)).to(device)
    tokenizer = WhisperTokenizerFast.from_pretrained(str(checkpoint))
    clips = load_clips(
        manifest,
        options.clip_s,
        model.config.num_mel_bins,
        options.silent_under_talk_db,
        options.clean_targets,
    )
    if not clips:
        raise ValueError("no usable clips in the manifest")
    windows = []
    if recordings is not None and options.window_lengths:
        windows = load_windows(
            recordings, options.window_lengths, model.config.num_mel_bins, options.seed
        )
    taught_clips = clips + windows
    taught = cached_teacher_states(
        options.teacher_cache,
        teacher_key(checkpoint, taught_clips) if options.teacher_cache else "",
        lambda: teacher_states(model, taught_clips, options.batch_size, tokenizer),
    )
    targets = taught.states
    for clip, text in zip(taught_clips, taught.texts, strict=True):
        if clip.text_from_teacher:
            heard = text or ""
            clip.text = (
                heard_script(clip.script, heard) if options.window_text == "script" else heard
            )
    prefix = tokenizer.convert_tokens_to_ids(["<|notimestamps|>"])
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    labels = [
        torch.tensor(prefix + transcript_ids(tokenizer, c.text) + [eot]) for c in taught_clips
    ]
    mixtures = talk_mixtures(
        clips,
        options.talk_mixtures,
        options.talk_mix_db,
        model.config.num_mel_bins,
        options.seed,
    )
    remixed = room_remixes(clips, options.room_remixes, model.config.num_mel_bins, options.seed)
    mixtures += remixed
    for c in clips:
        c.quiet_audio = c.talker_audio = c.room_audio = None  # only the mixtures needed them
    rows = [
        {"input_features": torch.from_numpy(c.features), "teacher_states": t, "labels": y}
        for c, t, y in zip(taught_clips, targets, labels, strict=True)
    ] + [
        {
            "input_features": torch.from_numpy(m.features),
            "teacher_states": targets[m.source],
            "labels": labels[m.source],
        }
        for m in mixtures
    ]
    trained = _prepare(model, options)
    args = Seq2SeqTrainingArguments(
        output_dir=str(out_dir / ".trainer"),
        per_device_train_batch_size=options.batch_size,
        max_steps=options.steps,
        learning_rate=options.learning_rate,
        warmup_steps=min(options.warmup_steps, max(options.steps // 10, 0)),
        lr_scheduler_type="linear",
        logging_steps=max(1, options.steps // 20),
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=options.seed,
        use_cpu=device == "cpu",
        disable_tqdm=True,
    )
    trainer = ShortContextTrainer(
        model=trained,
        args=args,
        train_dataset=rows,
        data_collator=collate,
        acft_weight=options.acft_weight,
        ce_weight=options.ce_weight,
        whisper=model,
    )
    result = trainer.train()
    if options.lora:
        model = trained.merge_and_unload()
    shutil.rmtree(out_dir / ".trainer", ignore_errors=True)
    model.save_pretrained(str(out_dir))
    for name in COPIED_FILES:  # the tokenizer and preprocessor, for the export
        if (checkpoint / name).is_file():
            shutil.copy(checkpoint / name, out_dir / name)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {
        "clips": len(clips),
        "silent_clips": sum(not c.text for c in clips),
        "talk_mixtures": len(mixtures) - len(remixed),
        "room_remixes": len(remixed),
        "clean_targets": sum(c.taught_by_twin for c in clips),
        "windows": len(windows),
        "windows_by_length": {
            f"{n / FRAMES_PER_S:g}": sum(w.features.shape[1] == n for w in windows)
            for n in sorted({w.features.shape[1] for w in windows})
        },
        "windows_taught_by_twin": sum(w.taught_by_twin for w in windows),
        "windows_without_words": sum(not w.text for w in windows),
        "bad_rows": len(manifest.bad),
        "steps": options.steps,
        "train_seconds": round(float(result.metrics.get("train_runtime", 0.0)), 1),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "device": device,
    }


def transcript_ids(tokenizer: Any, text: str) -> list[int]:
    """The transcript's tokens (none for an empty one: the target is then the end)."""
    return list(tokenizer(" " + text, add_special_tokens=False).input_ids) if text else []


def _prepare(model: Any, options: FinetuneOptions) -> Any:
    """Freeze what is not trained; wrap in LoRA adapters if asked."""
    side = r".*\.(encoder|decoder)\." if options.train_decoder else r".*\.encoder\."
    if options.lora:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=options.lora_rank,
            lora_alpha=2 * options.lora_rank,
            lora_dropout=0.0,
            target_modules=side + r"layers\.\d+\..*(" + "|".join(LORA_TARGETS) + ")$",
        )
        return get_peft_model(model, config)
    for name, param in model.named_parameters():
        trains = ".encoder." in name or (options.train_decoder and ".decoder." in name)
        param.requires_grad_(trains and "embed_positions" not in name)
    return model


def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    labels = torch.nn.utils.rnn.pad_sequence(
        [r["labels"] for r in rows], batch_first=True, padding_value=-100
    )
    return {
        "input_features": torch.stack([r["input_features"] for r in rows]),
        "teacher_states": torch.stack([r["teacher_states"] for r in rows]),
        "labels": labels,
    }


class SameLengthBatches:
    """Batches of rows whose clips are equally long (a batch is one tensor), shuffled
    anew at every pass: the rows of each length in random order, cut into batches, and
    the batches of all lengths in random order."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.by_length: dict[int, list[int]] = {}
        for index, length in enumerate(lengths):
            self.by_length.setdefault(length, []).append(index)
        self.batch_size = batch_size
        self.rng = random.Random(f"{seed}:batches")

    def __iter__(self) -> Iterator[list[int]]:
        batches = []
        for _, indices in sorted(self.by_length.items()):
            order = self.rng.sample(indices, len(indices))
            batches += [
                order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)
            ]
        self.rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        size = self.batch_size
        return sum((len(v) + size - 1) // size for v in self.by_length.values())


class ShortContextTrainer(Seq2SeqTrainer):  # type: ignore[misc]
    """Seq2SeqTrainer whose loss is the encoder's distance to its padded-context states,
    plus, if weighted, the transcript's cross-entropy. Clips may differ in length from
    batch to batch (never within one); the encoder takes each batch's length
    (``short_context`` on ``whisper``, the model under any adapters)."""

    def __init__(
        self, *args: Any, acft_weight: float, ce_weight: float, whisper: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.acft_weight = acft_weight
        self.ce_weight = ce_weight
        self.whisper = whisper

    def get_train_dataloader(self) -> torch.utils.data.DataLoader[Any]:
        rows = self.train_dataset
        batches = SameLengthBatches(
            [int(r["input_features"].shape[-1]) for r in rows],
            self._train_batch_size,
            self.args.seed,
        )
        return torch.utils.data.DataLoader(
            rows, batch_sampler=batches, collate_fn=self.data_collator, num_workers=0
        )

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        features = inputs["input_features"]
        with short_context(self.whisper, int(features.shape[-1]) // 2):
            states = model.get_encoder()(features).last_hidden_state
        target = inputs["teacher_states"].to(states.dtype)
        loss = self.acft_weight * torch.nn.functional.mse_loss(states, target)
        outputs = None
        if self.ce_weight:
            outputs = model(encoder_outputs=(states,), labels=inputs["labels"])
            loss = loss + self.ce_weight * outputs.loss
        return (loss, outputs) if return_outputs else loss
