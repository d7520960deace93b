"""tritondoctor: diagnose and fix why PyTriton / Triton Inference Server will not start."""

import os as _os

__version__ = "0.1.0"

# `checks/` and `fixes/` live beside this package in the source tree and are installed as
# tritondoctor.checks / tritondoctor.fixes (pyproject's package-dir). When this package is
# imported straight from a checkout (`python -m tritondoctor` in the repository root shadows an
# installed copy), give it the same mapping: the subpackages are found in the parent directory.
_here = _os.path.dirname(__file__)
_parent = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "checks")) and _os.path.isfile(_os.path.join(_parent, "checks", "__init__.py")):
    __path__.append(_parent)  # type: ignore[name-defined]  # noqa: F821
