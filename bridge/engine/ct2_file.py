"""CTranslate2's ``model.bin``, read and written with nothing but NumPy.

The format is what CTranslate2's ``ModelSpec._serialize`` writes: a binary version, the
spec's name and revision, then each variable (name, shape, dtype id, bytes), then aliases
(a name that stands for another variable's data, as Whisper's output projection stands
for its token embeddings). Reading then writing a file gives back the same bytes, so the
runtime can swap some of a model's variables (``bridge.engine.whisper_files``) without
the converter, which needs torch.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# include/ctranslate2/types.h, DataType: the order CTranslate2 writes type ids in.
DTYPES: tuple[Any, ...] = (np.float32, np.int8, np.int16, np.int32, np.float16, "bfloat16")


class Ct2FormatError(ValueError):
    """model.bin is not a CTranslate2 model this reader understands."""


@dataclass
class Ct2ModelFile:
    spec: str
    binary_version: int
    revision: int
    variables: dict[str, npt.NDArray[Any]]  # in the file's order, aliases apart
    aliases: dict[str, str]  # alias -> the variable it stands for

    def resolved(self) -> dict[str, npt.NDArray[Any]]:
        """Variables by name, aliases included (the same array as their target)."""
        return self.variables | {a: self.variables[t] for a, t in self.aliases.items()}


def parse_ct2_file(data: bytes, path: str) -> Ct2ModelFile:
    """The parts of a ``model.bin``; any damage raises :class:`Ct2FormatError`."""
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        if offset + struct.calcsize(fmt) > len(data):
            raise Ct2FormatError(f"{path}: truncated at byte {offset}")
        (value,) = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize(fmt)
        return int(value)

    def text() -> str:
        nonlocal offset
        n = take("H")  # length including the trailing NUL
        raw = data[offset : offset + n - 1]
        offset += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Ct2FormatError(f"{path}: a name at byte {offset} is not UTF-8") from exc

    version = take("I")
    if not 5 <= version <= 6:  # the versions the shipped converter writes (6) and reads
        raise Ct2FormatError(f"{path}: CTranslate2 binary version {version} is not supported")
    spec = text()
    revision = take("I")
    variables: dict[str, npt.NDArray[Any]] = {}
    for _ in range(take("I")):
        name = text()
        shape = [take("I") for _ in range(take("B"))]
        type_id = take("B")
        size = take("I")
        if type_id >= len(DTYPES) or isinstance(DTYPES[type_id], str):
            raise Ct2FormatError(f"{path}: {name} has a data type ({type_id}) not supported")
        if offset + size > len(data):
            raise Ct2FormatError(f"{path}: truncated in {name}")
        raw = data[offset : offset + size]
        offset += size
        try:
            variables[name] = np.frombuffer(raw, dtype=DTYPES[type_id]).reshape(shape).copy()
        except ValueError as exc:  # sizes that disagree with the shape
            raise Ct2FormatError(f"{path}: {name}: {exc}") from exc
    aliases: dict[str, str] = {}
    for _ in range(take("I")):
        alias, target = text(), text()
        if target not in variables:
            raise Ct2FormatError(f"{path}: alias {alias} points at unknown {target}")
        aliases[alias] = target
    return Ct2ModelFile(spec, version, revision, variables, aliases)


def serialize_ct2_file(model: Ct2ModelFile) -> bytes:
    """The bytes of ``model.bin`` for ``model``, as CTranslate2 writes them."""
    out = bytearray()

    def text(value: str) -> None:
        raw = value.encode("utf-8") + b"\0"
        out.extend(struct.pack("<H", len(raw)) + raw)

    out.extend(struct.pack("<I", model.binary_version))
    text(model.spec)
    out.extend(struct.pack("<I", model.revision))
    out.extend(struct.pack("<I", len(model.variables)))
    for name, value in model.variables.items():
        type_id = next((i for i, d in enumerate(DTYPES) if value.dtype == d), None)
        if type_id is None:
            raise Ct2FormatError(f"{name}: data type {value.dtype} has no CTranslate2 id")
        text(name)
        out.extend(struct.pack("<B", value.ndim))
        out.extend(struct.pack(f"<{value.ndim}I", *value.shape))
        data = np.ascontiguousarray(value).tobytes()
        out.extend(struct.pack("<BI", type_id, len(data)))
        out.extend(data)
    out.extend(struct.pack("<I", len(model.aliases)))
    for alias, target in model.aliases.items():
        text(alias)
        text(target)
    return bytes(out)
