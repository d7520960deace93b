"""One spelling for a file in everything a person reads: the directory with its symlinks resolved
(/lib → /usr/lib on merged-/usr systems), the file name kept as the loader asked for it (so a
soname stays a soname). The loader's own trees keep ld.so's spelling, which its oracle compares."""

from __future__ import annotations

import os


def canonical(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(os.path.realpath(directory or "."), name)
