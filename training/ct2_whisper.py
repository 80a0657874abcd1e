"""A CTranslate2 Whisper model into a transformers checkpoint, so it can be fine-tuned offline.

The model hubs are out of reach on many hosts, but the runtime's embedded tiny.en
ships as a CTranslate2 directory (``model.bin``, ``config.json``,
``tokenizer.json``; ``bridge.engine.ct2_file`` reads its ``model.bin``). Whisper's spec
fuses the self-attention's query, key and value into one linear layer and the
cross-attention's key and value into another; keys have no bias in Whisper, so
the fused bias holds zeros there. :func:`import_ct2_whisper` undoes both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.engine.ct2_file import Ct2FormatError, parse_ct2_file
from bridge.engine.models import embedded_whisper_dir, overlay_model_files
from bridge.engine.whisper_files import is_overlay

# Whisper's special tokens by id, which the tokenizer file also lists.
_EOT = "<|endoftext|>"
_SOT = "<|startoftranscript|>"
_NO_TIMESTAMPS = "<|notimestamps|>"


@dataclass(frozen=True)
class Ct2Whisper:
    variables: dict[str, npt.NDArray[Any]]
    config: dict[str, Any]  # the directory's config.json
    spec: str
    binary_version: int


def read_model_bin(path: Path) -> tuple[str, int, dict[str, npt.NDArray[Any]]]:
    """(spec name, binary version, variables by name, aliases resolved)."""
    return parse_model_bin(path.read_bytes(), str(path))


def parse_model_bin(data: bytes, path: str) -> tuple[str, int, dict[str, npt.NDArray[Any]]]:
    """As :func:`read_model_bin`; any damage raises :class:`Ct2FormatError`."""
    model = parse_ct2_file(data, path)
    return model.spec, model.binary_version, model.resolved()


def read_ct2_whisper(model_dir: Path) -> Ct2Whisper:
    """A CTranslate2 Whisper directory, or an overlay on the embedded tiny.en."""
    files = whisper_files(model_dir)
    spec, version, variables = parse_model_bin(files["model.bin"], str(model_dir / "model.bin"))
    if spec != "WhisperSpec":
        raise Ct2FormatError(f"{model_dir} holds a {spec}, not a Whisper model")
    return Ct2Whisper(variables, json.loads(files["config.json"]), spec, version)


def whisper_files(model_dir: Path) -> dict[str, bytes]:
    """``model.bin``, ``config.json`` and ``tokenizer.json`` of a model directory."""
    return overlay_model_files(model_dir) or {
        n: (model_dir / n).read_bytes() for n in ("model.bin", "config.json", "tokenizer.json")
    }


def _weight(v: dict[str, npt.NDArray[Any]], name: str) -> npt.NDArray[np.float32]:
    """A variable as float32, dequantized if it was saved as int8/int16 with a scale."""
    value = v[name]
    scale = v.get(name + "_scale")
    if value.dtype in (np.int8, np.int16) and scale is not None:
        return (value.astype(np.float32) / scale.astype(np.float32).reshape(-1, 1)).astype(
            np.float32
        )
    return value.astype(np.float32)


def _layer_count(v: dict[str, Any], side: str) -> int:
    return len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})


def hf_state_dict(model: Ct2Whisper) -> dict[str, npt.NDArray[np.float32]]:
    """transformers' WhisperForConditionalGeneration state dict from the CT2 variables."""
    v = model.variables
    d_model = v["encoder/conv1/weight"].shape[0]
    out: dict[str, npt.NDArray[np.float32]] = {}

    def linear(hf: str, ct2: str) -> None:
        out[f"{hf}.weight"] = _weight(v, f"{ct2}/weight")
        out[f"{hf}.bias"] = _weight(v, f"{ct2}/bias")

    def norm(hf: str, ct2: str) -> None:
        out[f"{hf}.weight"] = _weight(v, f"{ct2}/gamma")
        out[f"{hf}.bias"] = _weight(v, f"{ct2}/beta")

    def fused(hf: str, ct2: str, names: tuple[str, ...]) -> None:
        weights = np.split(_weight(v, f"{ct2}/weight"), len(names))
        biases = np.split(_weight(v, f"{ct2}/bias"), len(names))
        for name, w, b in zip(names, weights, biases, strict=True):
            out[f"{hf}.{name}.weight"] = w
            if name != "k_proj":  # Whisper's keys carry no bias; CT2 stores zeros
                out[f"{hf}.{name}.bias"] = b

    enc, dec = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        linear(f"{enc}.{conv}", f"encoder/{conv}")
    out[f"{enc}.embed_positions.weight"] = _weight(v, "encoder/position_encodings/encodings")
    norm(f"{enc}.layer_norm", "encoder/layer_norm")

    def block(hf: str, ct2: str) -> None:
        """Self-attention and feed-forward, which encoder and decoder layers share."""
        norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
        fused(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
        linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")

    for i in range(_layer_count(v, "encoder")):
        block(f"{enc}.layers.{i}", f"encoder/layer_{i}")
    out[f"{dec}.embed_tokens.weight"] = _weight(v, "decoder/embeddings/weight")
    out[f"{dec}.embed_positions.weight"] = _weight(v, "decoder/position_encodings/encodings")
    norm(f"{dec}.layer_norm", "decoder/layer_norm")
    for i in range(_layer_count(v, "decoder")):
        hf, ct2 = f"{dec}.layers.{i}", f"decoder/layer_{i}"
        block(hf, ct2)
        norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
        linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
        fused(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", ("k_proj", "v_proj"))
        linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
    out["proj_out.weight"] = _weight(v, "decoder/projection/weight")
    if out[f"{enc}.conv1.weight"].shape[0] != d_model:
        raise Ct2FormatError("encoder width does not match its first convolution")
    return out


def import_ct2_whisper(model_dir: Path, out_dir: Path) -> Path:
    """Write a transformers checkpoint (model, tokenizer, feature extractor) for ``model_dir``."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    ct2 = read_ct2_whisper(model_dir)
    v = ct2.variables
    tokenizer_dir = embedded_whisper_dir() if is_overlay(model_dir) else model_dir
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_dir / "tokenizer.json"),
        unk_token=_EOT,
        bos_token=_EOT,
        eos_token=_EOT,
        pad_token=_EOT,
    )
    vocab_size, d_model = v["decoder/embeddings/weight"].shape
    n_mels = v["encoder/conv1/weight"].shape[1]
    heads = int(np.asarray(v["encoder/num_heads"]).reshape(-1)[0])
    dec_heads = int(np.asarray(v["decoder/num_heads"]).reshape(-1)[0])
    multilingual = vocab_size >= 51865  # tiny.en and friends have 51864 entries
    eot = tokenizer.convert_tokens_to_ids(_EOT)
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=_layer_count(v, "encoder"),
        decoder_layers=_layer_count(v, "decoder"),
        encoder_attention_heads=heads,
        decoder_attention_heads=dec_heads,
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids(_SOT),
        suppress_tokens=list(ct2.config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2.config.get("suppress_ids_begin", [])),
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(a) for k, a in hf_state_dict(ct2).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]  # tied to the token embeddings
    if missing or unexpected:
        raise Ct2FormatError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    generation = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        alignment_heads=ct2.config.get("alignment_heads"),
        no_timestamps_token_id=tokenizer.convert_tokens_to_ids(_NO_TIMESTAMPS),
        is_multilingual=multilingual,
        max_length=config.max_target_positions,
    )
    if ids := ct2.config.get("lang_ids"):  # kept so that an export writes the same config
        generation.lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in ids}
    model.generation_config = generation
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    features = WhisperFeatureExtractor(feature_size=n_mels)
    WhisperProcessor(features, tokenizer).save_pretrained(str(out_dir))
    features.save_pretrained(str(out_dir))  # preprocessor_config.json, as older tools expect
    return out_dir
