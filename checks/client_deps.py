"""Do the installed grpcio and protobuf fit tritonclient? (catalog row 35)

Read statically: tritonclient's METADATA (Requires-Dist of its `grpc` / `all` extras), the
GRPC_GENERATED_VERSION its service_pb2_grpc.py refuses to run below, and the protobuf runtime its
*_pb2.py files validate against (ValidateProtobufRuntimeVersion).
"""

from __future__ import annotations

from tritondoctor import versions
from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "client-deps"
AREA = "Python packages"
ORDER = 51


def _problems(client) -> list[str]:  # noqa: ANN001 - pkgfiles.ClientDeps
    out = []
    for text in client.requires:
        parsed = versions.requirement(text.split(";")[0].strip())
        if parsed is None:
            continue
        name, spec, _ = parsed
        have = client.installed.get(name)
        if have is None:
            out.append(f"{name}{spec} is required by tritonclient[grpc] but not installed")
        elif spec and versions.satisfies(have, spec) is False:
            out.append(f"{name} {have} does not meet tritonclient's {name}{spec}")
    grpc, pb = client.installed.get("grpcio"), client.installed.get("protobuf")
    if client.grpc_generated and grpc and versions.release(grpc) < versions.release(client.grpc_generated):
        out.append(f"its generated gRPC code depends on grpcio>={client.grpc_generated}; {grpc} is installed")
    if client.protobuf_gencode and pb and versions.release(pb)[:1] != versions.release(client.protobuf_gencode)[:1]:
        out.append(f"its *_pb2.py were generated for protobuf {client.protobuf_gencode}; {pb} is installed")
    elif client.protobuf_gencode and pb and versions.release(pb) < versions.release(client.protobuf_gencode):
        out.append(f"its *_pb2.py need protobuf>={client.protobuf_gencode}; {pb} is installed")
    return list(dict.fromkeys(out))


def run(snap: Snapshot) -> list[Finding]:
    files, target = snap.pkgfiles, snap.target
    client = files.client if files else None
    if client is None or target is None:
        return [Finding(ID, Status.SKIP, "tritonclient is not installed in the environment")]
    evidence = {"tritonclient": client.tritonclient, "requires": list(client.requires),
                "grpc_generated": client.grpc_generated, "protobuf_gencode": client.protobuf_gencode,
                "installed": dict(client.installed)}
    problems = _problems(client)
    if not problems:
        have = ", ".join(f"{k} {v}" for k, v in client.installed.items() if v)
        return [Finding(ID, Status.OK, f"{have} fit tritonclient {client.tritonclient}", evidence=evidence)]
    wanted = " ".join(repr(r.split(";")[0].strip()) for r in client.requires) or "grpcio protobuf"
    return [Finding(
        ID, Status.ERROR, f"tritonclient {client.tritonclient}: " + "; ".join(problems),
        detail="PyTriton imports tritonclient's gRPC client; mismatched grpcio / protobuf fail at import "
               "('generated code ... depends on grpcio>=', 'Descriptors cannot be created directly') or at call "
               "time ('unexpected keyword argument _registered_method').",
        evidence=evidence,
        fix=FixHint("install-deps", "install the versions tritonclient asks for",
                    (f"{target.executable} -m pip install {wanted}",)))]


SIGNATURES = (
    sig(r"generated code in \S+ depends on\s+grpcio>=([\d.]+)", 35, fast_fail=True,
        cause="tritonclient's generated gRPC code is newer than the installed grpcio"),
    sig(r"unexpected keyword argument '_registered_method'", 35, fast_fail=True,
        cause="tritonclient's generated gRPC code is newer than the installed grpcio"),
    sig(r"Descriptors cannot be created directly", 35, fast_fail=True,
        cause="tritonclient's *_pb2.py files do not fit the installed protobuf"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(35,),
                  summary="tritonclient's grpcio / protobuf requirements and generated code vs what is installed")
