"""A LD_LIBRARY_PATH of 5,000 entries (a generated one, or a ~/.bashrc re-sourced for years) gives
a readable report: titles name a few entries and count the rest, --json stays small; the
loader's cost is measured in bench/bench_ldpath.py, not here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def test_five_thousand_entries_give_short_titles_and_a_small_json() -> None:
    # Short names: one environment variable may hold at most 128 KiB (MAX_ARG_STRLEN).
    tmp_path = Path(tempfile.mkdtemp(prefix="l5k", dir="/tmp"))
    try:
        _run(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _run(tmp_path: Path) -> None:
    entries = []
    for i in range(5000):
        path = tmp_path / f"e{i}"
        if i % 50 == 0:
            path.mkdir()
        entries.append(str(path))
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(entries + entries[:3]))
    proc = subprocess.run([sys.executable, "-m", "tritondoctor", "check", "--json", "--python", sys.executable,
                           "--only", "ld-library-path"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    missing = next(f for f in findings if "do not exist" in f["title"])
    assert "and 4892 more" in missing["title"] and len(missing["title"]) < 600
    assert missing["evidence"]["entries"][-1] == {"omitted": 4900 - 100}
    repeated = next(f for f in findings if "repeats" in f["title"])
    assert "(2 times)" in repeated["title"]
    assert len(proc.stdout) < 400_000  # the export command carries the whole value; lists do not
