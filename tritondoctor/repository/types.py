"""Facts about Triton model repositories: pure data, read once by `gather_repositories`.

Paths inside a packed execution environment are shown as `ARCHIVE!member` (see `EnvFacts.show`);
the check turns these records into findings, nothing here judges them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Json:
    def to_json(self) -> dict[str, Any]:
        return _plain(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class ConfigError(_Json):
    file: str
    line: int | None
    column: int | None
    message: str


@dataclass(frozen=True)
class VersionFacts(_Json):
    version: int
    directory: str
    model_file: str  # <version>/<default_model_filename or model.py>
    model_file_exists: bool


@dataclass(frozen=True)
class MountFacts(_Json):
    path: str
    mount_point: str
    noexec: bool
    free_bytes: int | None = None
    exists: bool = True


@dataclass(frozen=True)
class StubFacts(_Json):
    path: str
    source: str  # "model" (custom stub in the model directory), "backend", "pytriton" (copied per minor)
    exists: bool
    executable: bool = False
    mount: MountFacts | None = None
    needed_libpython: str | None = None  # the libpython DT_NEEDED name
    python_minor: str | None = None  # read from that name
    run_as: str | None = None  # where it runs from, when not where it lies
    elf_error: str | None = None


@dataclass(frozen=True)
class EnvFacts(_Json):
    """An EXECUTION_ENV_PATH: a conda-pack tarball or an unpacked directory."""

    configured: str  # the parameter as written
    path: str  # $$TRITON_MODEL_DIRECTORY expanded, absolute
    kind: str  # "tarball", "directory", "missing"
    error: str | None = None  # unreadable / corrupt / truncated archive
    python_minors: tuple[str, ...] = ()  # from lib/pythonX.Y directories
    libpython: str | None = None  # member or file lib/libpythonX.Y.so.1.0 (relative to the env)
    libstdcxx: str | None = None  # lib/libstdc++.so.6, relative
    has_activate: bool = False
    unpacked_bytes: int = 0
    members: int = 0

    @property
    def python_minor(self) -> str | None:
        return self.python_minors[-1] if self.python_minors else None

    def show(self, relative: str) -> str:
        return f"{self.path}!{relative}" if self.kind == "tarball" else f"{self.path.rstrip('/')}/{relative}"


@dataclass(frozen=True)
class VersionProblem(_Json):
    version: str
    file: str  # the loaded object lacking it (display path)
    required_by: str
    loaded_first_by: str = ""  # for extensions: the object of the stub's closure that loaded `file`


@dataclass(frozen=True)
class ClosureFacts(_Json):
    """The closure of one object as the stub process will load it."""

    file: str  # display path
    missing: tuple[str, ...] = ()  # names not found
    missing_needed_by: Mapping[str, str] = field(default_factory=dict)
    version_errors: tuple[VersionProblem, ...] = ()
    errors: tuple[str, ...] = ()
    libpython: str | None = None  # display path of the libpython it loads
    libpython_in_env: bool = False
    libstdcxx: str | None = None  # display path of the libstdc++.so.6 it loads
    libstdcxx_in_env: bool = False
    ld_library_path: str | None = None


@dataclass(frozen=True)
class ImportFacts(_Json):
    module: str  # the top-level name imported
    line: int
    optional: bool  # inside a try: ... except ImportError
    found: str | None  # display path of what provides it; None: nothing does
    builtin: bool = False
    extensions: tuple[ClosureFacts, ...] = ()


@dataclass(frozen=True)
class ModelFacts(_Json):
    repository: str
    name: str
    directory: str
    config_file: str | None
    config_error: ConfigError | None = None
    config_name: str = ""
    backend: str = ""
    platform: str = ""
    versions: tuple[VersionFacts, ...] = ()
    version_note: str = ""  # why no version directory was selected
    env: EnvFacts | None = None
    python_minor: str | None = None  # the Python the model will run in
    python_from: str = ""  # "env" or "target"
    stub: StubFacts | None = None
    stub_closure: ClosureFacts | None = None
    imports: tuple[ImportFacts, ...] = ()
    model_file_error: str | None = None  # model.py unreadable / syntax error

    @property
    def is_python(self) -> bool:
        return self.backend == "python"


@dataclass(frozen=True)
class RepositoryInfo(_Json):
    path: str
    error: str | None = None
    models: tuple[ModelFacts, ...] = ()


@dataclass(frozen=True)
class BackendFacts(_Json):
    directory: str
    source: str  # "given", "default", "pytriton"
    exists: bool
    python_dir_exists: bool
    stub: str  # <directory>/python/triton_python_backend_stub, or PyTriton's for the target minor
    pytriton_stubs: Mapping[str, str] = field(default_factory=dict)  # minor -> python_backend_stubs file


@dataclass(frozen=True)
class RepositoryFacts(_Json):
    repositories: tuple[RepositoryInfo, ...]
    backend: BackendFacts | None = None
    unpack_dir: MountFacts | None = None  # where the backend unpacks tarballs (/tmp)
    target_minor: str | None = None
    parser_error: str | None = None  # tritonclient / protobuf missing
