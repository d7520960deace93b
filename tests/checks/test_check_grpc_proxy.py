"""Fast tier: the `grpc-proxy` check (proxy variables gRPC would use for loopback)."""

from __future__ import annotations

from pathlib import Path

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import grpc_proxy as check

PROXY = "http://proxy.corp:3128"


def _env(**variables: str | None) -> sf.Snapshot:
    return sf.with_env(sf.base(), **variables)


def test_ok_without_proxy() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "no proxy variable gRPC would use"


def test_upper_case_names_are_ignored_by_grpc() -> None:
    found = sf.one(check, _env(HTTPS_PROXY=PROXY), Status.OK)
    assert "(HTTPS_PROXY set, but gRPC reads only the lower-case names)" in found.title


def test_proxy_without_exemption_is_an_error() -> None:
    found = sf.one(check, _env(http_proxy=PROXY), Status.ERROR)
    assert f"http_proxy={PROXY} sends gRPC to localhost and 127.0.0.1 through the proxy" in found.title
    assert found.fix is not None and found.fix.id == "grpc-proxy-hooks"


def test_partial_exemption_warns() -> None:
    found = sf.one(check, _env(https_proxy=PROXY, no_proxy="localhost,.corp"), Status.WARN)
    assert "sends gRPC to 127.0.0.1 through the proxy (no_proxy covers only localhost)" in found.title


def test_exemptions_that_cover_loopback() -> None:
    assert "no_grpc_proxy exempts" in sf.one(check, _env(grpc_proxy=PROXY, no_grpc_proxy="localhost,127.0.0.1:8001")).title
    assert "no_proxy exempts" in sf.one(check, _env(http_proxy=PROXY, no_proxy="*"), Status.OK).title


def test_empty_no_grpc_proxy_hides_no_proxy() -> None:
    sf.one(check, _env(http_proxy=PROXY, no_grpc_proxy="", no_proxy="localhost,127.0.0.1"), Status.ERROR)


def test_credentials_are_redacted() -> None:
    found = sf.one(check, _env(http_proxy="http://alice:s3cret@proxy.corp:3128"))
    assert "***@proxy.corp:3128" in found.title and "s3cret" not in repr(found)


def test_fix_follows_the_environment(tmp_path: Path) -> None:
    system = sf.patch(_env(http_proxy=PROXY), "target", prefix=sf.BASE_PYTHON)
    found = sf.one(check, system)
    assert found.fix is not None and found.fix.id == "no-grpc-proxy"
    assert found.fix.commands == ("export no_grpc_proxy=localhost,127.0.0.1",)
    conda = sf.conda_target(_env(http_proxy=PROXY), str(tmp_path / "env"))
    assert sf.one(check, conda).fix.id == "grpc-proxy-hooks"  # type: ignore[union-attr]
    assert sf.one(check, sf.without_target(_env(http_proxy=PROXY))).fix.id == "no-grpc-proxy"  # type: ignore[union-attr]
