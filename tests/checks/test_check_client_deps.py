"""Fast tier: the `client-deps` check (tritonclient vs grpcio / protobuf)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import client_deps as check

from tritondoctor.facts.pkgfiles import ClientDeps

REQUIRES = ('grpcio>=1.63.0; extra == "grpc"', 'protobuf<6,>=5.26.1; extra == "grpc"')


def _client(grpcio: str | None = "1.66.2", protobuf: str | None = "5.28.2", **changes: object) -> sf.Snapshot:
    fields: dict[str, object] = dict(tritonclient="2.51.0", requires=REQUIRES, grpc_generated="1.66.0",
                                     protobuf_gencode="5.27.2", installed={"grpcio": grpcio, "protobuf": protobuf})
    fields.update(changes)
    return sf.patch(sf.base(), "pkgfiles", client=ClientDeps(**fields))  # type: ignore[arg-type]


def test_skip_without_tritonclient() -> None:
    sf.one(check, sf.base(), Status.SKIP)
    sf.one(check, sf.without_target(), Status.SKIP)


def test_ok() -> None:
    assert "grpcio 1.66.2, protobuf 5.28.2 fit tritonclient 2.51.0" == sf.one(check, _client(), Status.OK).title


def test_required_but_not_installed() -> None:
    found = sf.one(check, _client(grpcio=None), Status.ERROR)
    assert "grpcio>=1.63.0 is required by tritonclient[grpc] but not installed" in found.title
    assert found.fix is not None and found.fix.id == "install-deps"
    assert found.fix.commands == (f"{sf.PYTHON} -m pip install 'grpcio>=1.63.0' 'protobuf<6,>=5.26.1'",)


def test_requirement_not_met_and_generated_code_newer() -> None:
    found = sf.one(check, _client(grpcio="1.60.0"), Status.ERROR)
    assert "grpcio 1.60.0 does not meet tritonclient's grpcio>=1.63.0" in found.title
    assert "depends on grpcio>=1.66.0; 1.60.0 is installed" in found.title


def test_protobuf_of_another_major() -> None:
    found = sf.one(check, _client(protobuf="4.25.3", requires=()), Status.ERROR)
    assert "were generated for protobuf 5.27.2; 4.25.3 is installed" in found.title


def test_protobuf_older_than_the_gencode() -> None:
    found = sf.one(check, _client(protobuf="5.26.1", requires=()), Status.ERROR)
    assert "need protobuf>=5.27.2; 5.26.1 is installed" in found.title
    assert found.fix is not None and found.fix.commands[0].endswith("install grpcio protobuf")
