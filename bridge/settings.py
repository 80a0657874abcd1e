"""The one settings object: every option is a flag and an ``AMD_*`` environment variable.

Flags win over the environment, which wins over the defaults. ``Settings.load``
validates everything at start-up, so a bad value stops the service with a
clear message instead of failing on the first call.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.engine.asr import AsrOptions
from bridge.engine.models import (
    EMBEDDED,
    EMBEDDED_SHORT,
    default_classifier_path,
    resolve_whisper_model,
)
from bridge.errors import ConfigError
from bridge.pbx.ami import AmiConfig
from bridge.pbx.esl import EslConfig
from bridge.session.call import DecisionPolicy
from bridge.session.message_end import MessageEndPolicy


def _opt(
    default: Any, help: str, choices: tuple[str, ...] | None = None, secret: bool = False
) -> Any:
    return field(default=default, repr=not secret, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Settings:
    # Models
    whisper_model: str = _opt(
        EMBEDDED_SHORT,
        "'embedded-short' (bundled tiny.en with the shipped encoder for 2 s clips), 'embedded' "
        "(tiny.en as bundled), a CTranslate2 model or overlay directory, or a model name",
    )
    classifier: str = _opt(EMBEDDED, "'embedded' or the path of a classifier .npz")
    device: str = _opt("cpu", "where Whisper runs", ("cpu", "cuda", "auto"))
    compute_type: str = _opt(
        "default", "CTranslate2 compute type (default: int8 cpu, float16 cuda)"
    )
    language: str = _opt("en", "language for multilingual Whisper models")
    asr_pad: str = _opt("none", "pad clips to Whisper's 30 s ('30s') or not", ("none", "30s"))
    asr_tail_silence_s: float = _opt(0.0, "seconds of silence appended to each clip before ASR")
    asr_tokens_per_s: float = _opt(6.0, "cap on decoded tokens per second of audio")
    asr_beam_size: int = _opt(1, "beam size for decoding")
    vad_threshold: float = _opt(0.5, "speech probability threshold of the VAD")
    # Engine throughput
    asr_threads: int = _opt(
        0, "CTranslate2 threads per worker (0: the CPU cores shared out among the workers)"
    )
    engine_workers: int = _opt(2, "batches that may run at once")
    batch_size: int = _opt(16, "most clips in one batch")
    batch_wait_ms: float = _opt(5.0, "how long a clip waits for others to join its batch")
    engine_queue: int = _opt(1024, "most clips waiting for the engine before new ones fail")
    analysis_timeout_s: float = _opt(
        10.0, "deadline for one analysis of a live call, queue wait included (recordings: 600 s)"
    )
    # Decision policy
    window_s: float = _opt(2.0, "callee audio before the first analysis (seconds)")
    step_s: float = _opt(1.0, "further audio before asking again when unsure")
    max_window_s: float = _opt(7.0, "audio after which an unsure answer is NOTSURE")
    threshold: float = _opt(0.8, "confidence needed for HUMAN or MACHINE (0.5-1)")
    final_threshold: float = _opt(
        0.7, "confidence enough at the last ask, at the maximum window (the lower of the two)"
    )
    initial_silence_s: float = _opt(
        4.0, "callee audio with no speech in it after which the call is NOTSURE/SILENCE"
    )
    no_audio_timeout_s: float = _opt(
        5.0, "seconds without audio before what was heard is analysed (none: NOTSURE/NOAUDIO)"
    )
    # Tones and the end of a greeting
    tones: str = _opt("on", "fax and SIT tones decide MACHINE; beeps end greetings", ("on", "off"))
    beep_decides: str = _opt(
        "on", "with tones on: a beep after the callee's first sounds decides MACHINE", ("on", "off")
    )
    message_end: str = _opt(
        "off",
        "after MACHINE, wait for the greeting's end (beep, silence) before releasing the "
        "call, for calls that do not say",
        ("off", "on"),
    )
    message_end_silence_s: float = _opt(1.5, "silence after speech that ends a greeting")
    message_end_timeout_s: float = _opt(30.0, "call audio after which the wait gives up")
    # Service
    http_host: str = _opt("127.0.0.1", "address of the HTTP/WebSocket listener (0.0.0.0: all)")
    http_port: int = _opt(8080, "port of the HTTP/WebSocket listener (/ws/amd, /healthz)")
    audiosocket_host: str = _opt("127.0.0.1", "address of the AudioSocket listener for Asterisk")
    audiosocket_port: int = _opt(9092, "port of the AudioSocket listener")
    max_calls: int = _opt(500, "calls open at once; past it a call gets NOTSURE/OVERLOAD at once")
    shutdown_deadline_s: float = _opt(
        10.0, "on SIGTERM, how long calls in progress may take before they end NOTSURE/SHUTDOWN"
    )
    api_token: str = _opt(
        "", "bearer token the WebSocket endpoints require (empty: none)", secret=True
    )
    allowed_origins: str = _opt(
        "", "comma-separated Origin values browsers may connect from (empty: any)"
    )
    # Asterisk Manager Interface: where decisions become channel variables
    ami_host: str = _opt("", "Asterisk AMI host; empty: no AMI link (decisions are only logged)")
    ami_port: int = _opt(5038, "Asterisk AMI port")
    ami_user: str = _opt("", "AMI user (manager.conf section), needs read=user write=call,user")
    ami_secret: str = _opt("", "AMI secret of that user", secret=True)
    ami_timeout_s: float = _opt(2.0, "deadline for one AMI action")
    ami_retry_s: float = _opt(3.0, "how long a call's result is retried while AMI is down")
    # FreeSWITCH event socket: where decisions become channel variables
    esl_host: str = _opt("", "FreeSWITCH event socket host; empty: no ESL link")
    esl_port: int = _opt(8021, "FreeSWITCH event socket port")
    esl_password: str = _opt("", "event socket password (event_socket.conf.xml)", secret=True)
    esl_timeout_s: float = _opt(2.0, "deadline for one event socket command")
    esl_retry_s: float = _opt(3.0, "how long a call's result is retried while ESL is down")
    # Logging
    log_level: str = _opt("INFO", "log level", ("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = _opt("text", "log line format", ("text", "json"))

    # --- derived views ------------------------------------------------------

    @property
    def policy(self) -> DecisionPolicy:
        return DecisionPolicy(
            window_s=self.window_s,
            step_s=self.step_s,
            max_window_s=self.max_window_s,
            threshold=self.threshold,
            final_threshold=self.final_threshold,
            initial_silence_s=self.initial_silence_s,
            no_audio_timeout_s=self.no_audio_timeout_s,
            tones=self.tones == "on",
            beep_decides=self.beep_decides == "on",
            message_end=MessageEndPolicy(self.message_end_silence_s, self.message_end_timeout_s),
        )

    @property
    def asr_options(self) -> AsrOptions:
        return AsrOptions(
            device=self._resolved_device(),
            compute_type=self.compute_type,
            threads=self.asr_threads or self.threads_per_worker(),
            workers=self.engine_workers,
            language=self.language,
            pad_to_30s=self.asr_pad == "30s",
            tail_silence_s=self.asr_tail_silence_s,
            beam_size=self.asr_beam_size,
            tokens_per_second=self.asr_tokens_per_s,
        )

    def threads_per_worker(self) -> int:
        """The cores shared out among the engine's workers, so that two batches do not
        fight over the same cores (measured: benchmarks/capacity.py, docs/benchmarks.md)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        return max(1, (cores or os.cpu_count() or 1) // self.engine_workers)

    @property
    def ami(self) -> AmiConfig | None:
        """The AMI link's settings, or None when no AMI is configured."""
        if not self.ami_host:
            return None
        return AmiConfig(
            host=self.ami_host,
            port=self.ami_port,
            username=self.ami_user,
            secret=self.ami_secret,
            action_timeout_s=self.ami_timeout_s,
            publish_deadline_s=self.ami_retry_s,
        )

    @property
    def esl(self) -> EslConfig | None:
        """The event socket link's settings, or None when no ESL is configured."""
        if not self.esl_host:
            return None
        return EslConfig(
            host=self.esl_host,
            port=self.esl_port,
            password=self.esl_password,
            command_timeout_s=self.esl_timeout_s,
            publish_deadline_s=self.esl_retry_s,
        )

    def classifier_path(self) -> Path:
        if self.classifier == EMBEDDED:
            return default_classifier_path()
        return Path(self.classifier).expanduser()

    def whisper_dir(self) -> Path:
        return resolve_whisper_model(self.whisper_model)

    def _resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"

    # --- loading ------------------------------------------------------------

    @staticmethod
    def env_name(name: str) -> str:
        return "AMD_" + name.upper()

    @classmethod
    def sections(cls) -> dict[str, list[dataclasses.Field[Any]]]:
        """The settings by section, in declaration order."""
        found: dict[str, list[dataclasses.Field[Any]]] = {}
        section = ""
        for f in dataclasses.fields(cls):
            section = SECTION_STARTS.get(f.name, section)
            found.setdefault(section, []).append(f)
        return found

    @classmethod
    def add_arguments(
        cls, parser: argparse.ArgumentParser, sections: tuple[str, ...] | None = None
    ) -> None:
        """Add one ``--flag`` per setting of ``sections`` (all when None), one help group
        each; defaults stay None so the environment can apply."""
        for section, fields in cls.sections().items():
            if sections is not None and section not in sections:
                continue
            group = parser.add_argument_group(f"{section} (each also an AMD_* variable)")
            cls._add_flags(group, fields)

    @classmethod
    def _add_flags(
        cls, group: argparse._ArgumentGroup, fields: list[dataclasses.Field[Any]]
    ) -> None:
        for f in fields:
            flag = "--" + f.name.replace("_", "-")
            kind = _kind(f)
            extra: dict[str, Any] = {}
            if f.metadata.get("choices"):
                extra["choices"] = f.metadata["choices"]
            group.add_argument(
                flag,
                dest=f.name,
                type=kind,
                default=None,
                metavar=kind.__name__.upper(),
                help=f"{f.metadata['help']} [{cls.env_name(f.name)}, default {f.default}]",
                **extra,
            )

    @classmethod
    def load(
        cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Merge defaults, ``AMD_*`` variables and flags; raise ``ConfigError`` if invalid."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw_flag = getattr(args, f.name, None) if args is not None else None
            if raw_flag is not None:
                values[f.name] = raw_flag
                continue
            raw = env.get(cls.env_name(f.name))
            if raw is not None and raw.strip() != "":
                values[f.name] = _convert(f, raw.strip(), cls.env_name(f.name))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(
                    f"{self.env_name(f.name)}={getattr(self, f.name)!r}: "
                    f"choose one of {', '.join(choices)}"
                )
        positive = ("engine_workers", "batch_size", "engine_queue", "asr_beam_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{self.env_name(name)} must be at least 1")
        for name in ("http_port", "audiosocket_port", "ami_port", "esl_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{self.env_name(name)} must be a TCP port number (0-65535)")
        if self.ami_host and not (self.ami_user and self.ami_secret):
            raise ConfigError("AMD_AMI_HOST is set: AMD_AMI_USER and AMD_AMI_SECRET are needed too")
        if self.ami_timeout_s <= 0 or self.ami_retry_s < 0:
            raise ConfigError("AMD_AMI_TIMEOUT_S must be positive and AMD_AMI_RETRY_S not negative")
        if self.esl_host and not self.esl_password:
            raise ConfigError("AMD_ESL_HOST is set: AMD_ESL_PASSWORD is needed too")
        if any(ch in self.esl_password + self.ami_secret for ch in "\r\n\0"):
            raise ConfigError("AMD_ESL_PASSWORD and AMD_AMI_SECRET must be one line")
        if self.esl_timeout_s <= 0 or self.esl_retry_s < 0:
            raise ConfigError("AMD_ESL_TIMEOUT_S must be positive and AMD_ESL_RETRY_S not negative")
        if self.asr_threads < 0:
            raise ConfigError("AMD_ASR_THREADS must be 0 (automatic) or more")
        if self.batch_wait_ms < 0 or self.batch_wait_ms > 1000:
            raise ConfigError("AMD_BATCH_WAIT_MS must be between 0 and 1000")
        if self.analysis_timeout_s <= 0:
            raise ConfigError("AMD_ANALYSIS_TIMEOUT_S must be positive")
        if not 0.0 < self.vad_threshold < 1.0:
            raise ConfigError("AMD_VAD_THRESHOLD must be between 0 and 1")
        if not 0.0 <= self.asr_tail_silence_s <= 5.0:
            raise ConfigError("AMD_ASR_TAIL_SILENCE_S must be between 0 and 5")
        if not 1.0 <= self.asr_tokens_per_s <= 50.0:
            raise ConfigError("AMD_ASR_TOKENS_PER_S must be between 1 and 50")
        if not 1 <= self.max_calls <= 100_000:
            raise ConfigError("AMD_MAX_CALLS must be between 1 and 100000")
        if not 0.0 <= self.shutdown_deadline_s <= 600.0:
            raise ConfigError("AMD_SHUTDOWN_DEADLINE_S must be between 0 and 600")
        if any(ch in self.api_token for ch in " \r\n\0"):
            raise ConfigError("AMD_API_TOKEN must be one word (no spaces or line breaks)")
        if any(not o.startswith(("http://", "https://")) for o in self.origins):
            raise ConfigError("AMD_ALLOWED_ORIGINS: each origin looks like https://host[:port]")
        _ = self.policy  # DecisionPolicy checks its own ranges

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.allowed_origins.split(",") if o.strip())


# Where each section of the settings starts (fields are declared section by section).
SECTION_STARTS = {
    "whisper_model": "models",
    "asr_threads": "engine",
    "window_s": "decision",
    "tones": "tones",
    "message_end": "voicemail drop",
    "http_host": "service",
    "ami_host": "Asterisk AMI",
    "esl_host": "FreeSWITCH event socket",
    "log_level": "logging",
}
# What deciding recordings uses (``detect``): no listener, no PBX link, no greeting's end.
OFFLINE_SECTIONS = ("models", "engine", "decision", "tones", "logging")


def _kind(f: dataclasses.Field[Any]) -> type:
    return {"str": str, "int": int, "float": float, "bool": bool}[str(f.type)]


def _convert(f: dataclasses.Field[Any], raw: str, env_name: str) -> Any:
    kind = _kind(f)
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{env_name}={raw!r} is not a valid {kind.__name__}") from None
