#!/usr/bin/env python3
"""Coverage-guided fuzzing of the parsers the network reaches, with atheris.

    .venv/bin/pip install atheris        # or: pip install '.[fuzz]'
    .venv/bin/python scripts/fuzz.py audiosocket -max_total_time=600
    .venv/bin/python scripts/fuzz.py all -runs=200000

Targets (tests/fuzz_targets.py): audiosocket, esl, fork, amd_ws, tones, or all
(each in turn, with the same libFuzzer arguments). Without a corpus directory the
run starts from the target's well-formed seeds. The rule is the suite's: any
input parses or raises ProtocolError (or a subclass); any other exception is a
crash, and atheris saves the input that caused it (crash-<sha1>).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import atheris
    except ImportError:
        print("fuzz.py: atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    with atheris.instrument_imports():
        from tests import fuzz_targets
    name, libfuzzer_args = sys.argv[1], sys.argv[2:]
    names = list(fuzz_targets.TARGETS) if name == "all" else [name]
    if any(n not in fuzz_targets.TARGETS for n in names):
        print(f"fuzz.py: targets are {', '.join(fuzz_targets.TARGETS)} or all", file=sys.stderr)
        return 2
    if len(names) > 1:  # libFuzzer runs one target per process
        import subprocess

        codes = [subprocess.call([sys.executable, __file__, n, *libfuzzer_args]) for n in names]
        return max(codes)
    target = fuzz_targets.TARGETS[names[0]]
    if not any(not arg.startswith("-") for arg in libfuzzer_args):  # no corpus given
        corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{names[0]}-"))
        for i, seed in enumerate(fuzz_targets.SEEDS[names[0]]):
            (corpus / f"seed{i}").write_bytes(seed)
        libfuzzer_args = [*libfuzzer_args, str(corpus)]
    atheris.Setup([sys.argv[0], *libfuzzer_args], lambda data: fuzz_targets.check(target, data))
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
