"""Small questions about conda prefixes, shared by the conda facts modules."""

from __future__ import annotations

import os
from typing import Iterable


def real(path: str) -> str:
    return os.path.realpath(path)


def is_conda_prefix(prefix: str | None) -> bool:
    return bool(prefix) and os.path.isdir(os.path.join(prefix, "conda-meta"))  # type: ignore[arg-type]


def owning_conda_prefix(real_dir: str) -> str | None:
    """The nearest ancestor (or the directory itself) that is a conda environment."""
    current = real_dir
    while True:
        if os.path.isdir(os.path.join(current, "conda-meta")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def unique_existing(paths: Iterable[str | None]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for path in paths:
        if not path or not os.path.isdir(path):
            continue
        resolved = real(path)
        if resolved not in seen:
            seen.add(resolved)
            out.append(path)
    return out
