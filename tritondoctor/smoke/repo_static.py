"""Why a model that did not load failed, from what `check --model-repository` reads statically.

The server's log often shows only a symptom inside a packed execution environment: without the
environment's libpython the loader takes another libpython3.X from the system, which then finds
neither the environment's packages nor its standard library as built ("No module named
'numpy'"); a 3.9 environment under a 3.11 stub fails the same way. The static model-repository
check names the cause (no lib/libpython3.X.so.1.0, the stub's Python against the
environment's), so its errors for a failed model come first in that model's findings.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from tritondoctor.facts.target import TargetPython
from tritondoctor.findings import Finding, Status

# The causes the log cannot show: the stub, the execution environment, the loader in the stub.
# (A missing module or a bad config is named well enough by the log's own signatures.)
_HIDDEN_CAUSES = frozenset({"model-stub", "repack-env", "execution-env", "unpack-env", "chmod-stub", "move-stub",
                            "libstdcxx", "backend-directory"})


def _hidden_cause(finding: Finding) -> bool:
    return finding.fix is None or finding.fix.id in _HIDDEN_CAUSES


def static_findings(repos: Sequence[str], target: TargetPython, environ: Mapping[str, str],
                    backend_directory: str | None, models: Sequence[str]) -> dict[str, list[Finding]]:
    """Model name -> the static check's errors for it, for the `models` that did not load."""
    if not models:
        return {}
    from tritondoctor.checks import model_repository
    from tritondoctor.repository import gather_repositories

    try:
        facts = gather_repositories(list(repos), target, environ, backend_directory)
    except Exception:  # a diagnosis aid: the run's own findings stand without it
        return {}
    findings = model_repository.run_repositories(facts)
    out: dict[str, list[Finding]] = {}
    for name in models:
        mine = [f for f in findings if f.status is Status.ERROR and f.title.startswith(f"model '{name}' (")
                and _hidden_cause(f)]
        if mine:
            out[name] = [dataclasses.replace(f, evidence={**f.evidence, "model": name}) for f in mine]
    return out
