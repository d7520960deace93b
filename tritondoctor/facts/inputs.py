"""What a facts module reads from outside the machine's fixed state, declared where it is read.

Every facts module declares `READS = EnvReads(...)`: the environment variables (by name, and by
prefix for families such as CONDA_PREFIX_<n>) and the fixed files its gather looks at.
`Snapshot.derive` recomputes a fact only when the variables it declares differ; files are listed
for the reader (derive assumes the same machine, so they are not compared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class EnvReads:
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    everything: bool = False  # the fact copies the whole environment (server_environ)

    def view(self, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """The part of `environ` this fact depends on, comparable between two environments."""
        return tuple(sorted((k, v) for k, v in environ.items() if self.covers(k)))

    def covers(self, name: str) -> bool:
        return self.everything or name in self.names or name.startswith(self.prefixes)

    def same(self, a: Mapping[str, str], b: Mapping[str, str]) -> bool:
        return self.view(a) == self.view(b)

    def __or__(self, other: "EnvReads") -> "EnvReads":
        return EnvReads(
            names=self.names | other.names,
            prefixes=tuple(dict.fromkeys(self.prefixes + other.prefixes)),
            files=tuple(dict.fromkeys(self.files + other.files)),
            everything=self.everything or other.everything,
        )


EVERYTHING = EnvReads(everything=True)
NOTHING = EnvReads()
