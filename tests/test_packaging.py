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
