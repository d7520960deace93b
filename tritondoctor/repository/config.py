"""config.pbtxt, read with the real ModelConfig protobuf (tritonclient ships it), and the version
directories Triton would load for it."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from tritondoctor.repository.types import ConfigError, VersionFacts

CONFIG_NAME = "config.pbtxt"
DEFAULT_MODEL_FILE = "model.py"


class ParserUnavailable(Exception):
    """tritonclient (or protobuf) is not importable: config.pbtxt cannot be read."""


@dataclass(frozen=True)
class ParsedConfig:
    name: str
    backend: str
    platform: str
    default_model_filename: str
    parameters: dict[str, str]
    policy: str  # "latest", "all", "specific"
    policy_count: int  # latest: num_versions
    policy_versions: tuple[int, ...]  # specific: versions


_PB2 = "tritonclient.grpc.model_config_pb2"


def _model_config_module() -> Any:
    """tritonclient's generated model_config_pb2, loaded from its file without running
    tritonclient/grpc/__init__.py (which imports grpc: half a second). It is registered under its
    own name, so a later `import tritonclient.grpc` reuses it instead of registering the proto twice."""
    if _PB2 in sys.modules:
        module = sys.modules[_PB2]
        if module is None:
            raise ImportError(f"import of {_PB2} halted; None in sys.modules")
        return module
    spec = importlib.util.find_spec("tritonclient")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = next((os.path.join(d, "grpc", "model_config_pb2.py") for d in locations
                 if os.path.isfile(os.path.join(d, "grpc", "model_config_pb2.py"))), None)
    if path is None:
        raise ImportError("No module named 'tritonclient' (with grpc/model_config_pb2.py)")
    file_spec = importlib.util.spec_from_file_location(_PB2, path)
    assert file_spec is not None and file_spec.loader is not None
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[_PB2] = module
    try:
        file_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(_PB2, None)
        raise
    return module


def _parser() -> Callable[[str], Any]:
    try:
        from google.protobuf import text_format

        model_config_pb2 = _model_config_module()
    except Exception as exc:  # ImportError, or a protobuf runtime too old for the generated module
        raise ParserUnavailable(f"{exc.__class__.__name__}: {exc}") from None

    def parse(text: str) -> Any:
        return text_format.Parse(text, model_config_pb2.ModelConfig())

    return parse


def require_parser() -> None:
    """Raises ParserUnavailable when config.pbtxt cannot be parsed in this process."""
    _parser()


def parse_config(path: str) -> ParsedConfig | ConfigError:
    """Raises ParserUnavailable when there is nothing to parse with."""
    parse = _parser()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        return ConfigError(path, None, None, f"cannot read it: {exc}")
    try:
        message = parse(text)
    except Exception as exc:  # text_format.ParseError, and DecodeError for bad escapes
        line = getattr(exc, "GetLine", lambda: None)()
        column = getattr(exc, "GetColumn", lambda: None)()
        reason = str(exc)
        if line is not None:
            reason = reason.split(" : ", 1)[-1] if " : " in reason else reason
        return ConfigError(path, line, column, reason)
    return _from_message(message)


def _from_message(message: Any) -> ParsedConfig:
    policy, count, versions = "latest", 1, ()
    if message.HasField("version_policy"):
        which = message.version_policy.WhichOneof("policy_choice")
        if which == "all":
            policy = "all"
        elif which == "specific":
            policy, versions = "specific", tuple(message.version_policy.specific.versions)
        elif which == "latest":
            count = message.version_policy.latest.num_versions or 1
    return ParsedConfig(
        name=message.name,
        backend=message.backend,
        platform=message.platform,
        default_model_filename=message.default_model_filename,
        parameters={k: v.string_value for k, v in message.parameters.items()},
        policy=policy,
        policy_count=count,
        policy_versions=versions,
    )


def numeric_versions(model_dir: str) -> list[int]:
    """Subdirectories Triton takes as versions: names that are whole non-negative numbers."""
    try:
        entries = os.listdir(model_dir)
    except OSError:
        return []
    return sorted(int(e) for e in entries if e.isdigit() and os.path.isdir(os.path.join(model_dir, e)))


def select_versions(model_dir: str, config: ParsedConfig | None) -> tuple[tuple[VersionFacts, ...], str]:
    """The versions the policy loads, each with the file the python backend will run."""
    available = numeric_versions(model_dir)
    if not available:
        return (), f"no numeric version directory in {model_dir} (Triton loads none)"
    policy = config.policy if config else "latest"
    if policy == "all":
        chosen = available
    elif policy == "specific":
        wanted = list(config.policy_versions) if config else []
        chosen = [v for v in wanted if v in available]
        absent = [v for v in wanted if v not in available]
        if absent:
            return (), f"version_policy names version(s) {', '.join(map(str, absent))}, not found in {model_dir}"
    else:
        chosen = available[-(config.policy_count if config else 1):]
    filename = (config.default_model_filename if config else "") or DEFAULT_MODEL_FILE
    facts = []
    for version in chosen:
        directory = os.path.join(model_dir, str(version))
        model_file = os.path.join(directory, filename)
        facts.append(VersionFacts(version, directory, model_file, os.path.isfile(model_file)))
    return tuple(facts), ""
