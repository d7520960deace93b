"""Moved to tritondoctor.versions (the one version parser); kept for imports."""

from tritondoctor.versions import *  # noqa: F401,F403
from tritondoctor.versions import normalize, parse, release, requirement, satisfies  # noqa: F401
