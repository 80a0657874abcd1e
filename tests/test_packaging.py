"""What ``pip install .`` (not editable, as scripts/serve.sh does) ships: every
package of the source tree, since pyproject.toml lists them by name."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_package_in_the_tree_is_listed_for_the_wheel():
    # (read with a pattern, not tomllib: the project supports Python 3.10)
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M)
    assert block is not None
    listed = set(re.findall(r'"([\w.]+)"', block.group(1)))
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("bridge", "training")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert "bridge.tones" in listed
    assert in_tree - listed == set()


def test_every_committed_model_file_is_package_data():
    """The classifier and the Whisper overlay under models/ ship inside the wheel."""
    from fnmatch import fnmatch

    text = (ROOT / "pyproject.toml").read_text()
    line = re.search(r'^"bridge\.models" = \[(.*?)\]', text, re.M)
    assert line is not None
    globs = re.findall(r'"([^"]+)"', line.group(1))
    files = [
        p.relative_to(ROOT / "models").as_posix()
        for p in (ROOT / "models").rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    ]
    assert "whisper-short/encoder-overlay.npz" in files

    def shipped(path: str, glob: str) -> bool:  # setuptools' "*" stays inside one folder
        parts, pattern = path.split("/"), glob.split("/")
        return len(parts) == len(pattern) and all(map(fnmatch, parts, pattern))

    assert [f for f in files if not any(shipped(f, g) for g in globs)] == []
