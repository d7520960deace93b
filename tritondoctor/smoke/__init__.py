"""`tritondoctor smoke`: a real model through PyTriton bind → serve → infer in the target Python.

    result = run_smoke(python, env, timeout=120.0)
    render(result, console)
    sys.exit(result.exit_code)          # 0 passed, 1 failed

`SmokeUsageError` means the request itself is wrong (exit 2); on Ctrl-C or SIGTERM everything
started is ended and KeyboardInterrupt propagates (exit 130, EXIT_INTERRUPTED).
"""

from tritondoctor.render.smoke import render
from tritondoctor.smoke.runner import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_USAGE,
    SmokeResult,
    SmokeTimings,
    SmokeUsageError,
    run_smoke,
)

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
