"""What ``pip install .`` (not editable, as scripts/serve.sh does) ships: every
package of the source tree, since pyproject.toml lists them by name."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_package_in_the_tree_is_listed_for_the_wheel():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("bridge", "training")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert in_tree - listed == set()
