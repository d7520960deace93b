"""What PyTriton's server does that surprises clients and tools (catalog rows 24, 32, 38): log
signatures for explain and smoke; nothing of it is visible before a server runs.

Row 24: PyTriton 0.7.0 restricts the model-repository, statistics, shared-memory, trace and
logging endpoints with a random token per start. Row 32: python_backend r25.09+ no longer
sources an execution environment's `activate`. Row 38: readiness before the model is bound.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.findings import Finding
from tritondoctor.snapshot import Snapshot

ID = "server-protocol"
AREA = "Runtime resources"
ORDER = 90


def run(snap: Snapshot) -> list[Finding]:
    return []  # runtime behaviour only: see SIGNATURES


SIGNATURES = (
    sig(r"This API is restricted, expecting header 'triton-access-token'", 24,
        cause="PyTriton 0.7.0 restricts these endpoints with a token per start: send the header from "
              "triton.get_access_token(), or TritonSecurityConfig(restricted_endpoints=[]) when intended"),
    sig(r"This protocol is restricted", 24,
        cause="PyTriton 0.7.0 restricts these endpoints with a token per start: send the 'triton-access-token' "
              "header from triton.get_access_token()"),
    sig(r"Path (\S+)/bin/activate does not exist", 32,
        cause="python_backend r25.09+ stops sourcing the execution environment's activate: use a conda-pack'd env "
              "or venv and move activate.d variables into the server's environment"),
    sig(r"Invalid stub name: contains invalid characters", 32,
        cause="python_backend r25.09+ rejects model names with shell metacharacters: rename the model"),
    sig(r"Request for unknown model: '([^']+)'", 38,
        cause="the server reported ready before the model was bound: probe /v2/models/<model>/ready instead"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(),
                  summary="server behaviour clients meet at run time: restricted endpoints, r25.09 execution "
                          "environments, readiness before the model is bound (log signatures only)")
