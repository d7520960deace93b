"""`tritondoctor smoke`: a real model through PyTriton bind → serve → infer in the target Python.

    result = run_smoke(python, env, timeout=120.0)
    render(result, console)
    sys.exit(result.exit_code)          # 0 passed, 1 failed

`SmokeUsageError` means the request itself is wrong (exit 2); on Ctrl-C or SIGTERM everything
started is ended and KeyboardInterrupt (tritondoctor.errors.Interrupted under the CLI) propagates
(exit 130 / 143). Even a SIGKILL leaves nothing running: the run's supervisor ends its process
tree and removes its files, or the next run does (runner.py, supervisor.py, leftovers.py).
"""

from __future__ import annotations

from typing import Any

# The names below are loaded on first use (PEP 562): `explain` and the checks' log builders import
# tritondoctor.smoke.diagnose, which must not pull in the runner, rich and psutil with it.
_FROM_RUNNER = ("EXIT_FAIL", "EXIT_INTERRUPTED", "EXIT_PASS", "EXIT_USAGE", "SmokeResult", "SmokeTimings",
                "SmokeUsageError", "run_smoke")


def __getattr__(name: str) -> Any:
    if name in _FROM_RUNNER:
        from tritondoctor.smoke import runner

        return getattr(runner, name)
    if name == "render":
        from tritondoctor.render.smoke import render

        return render
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXIT_FAIL",
    "EXIT_INTERRUPTED",
    "EXIT_PASS",
    "EXIT_USAGE",
    "SmokeResult",
    "SmokeTimings",
    "SmokeUsageError",
    "render",
    "run_smoke",
]
