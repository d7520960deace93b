"""Model repositories for the repository smoke test and the stub-tree test, written on the fly.

`write_add_sub` is a Python-backend model with two FP32 vectors in and their sum and difference
out; the others break in one known way each.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

ADD_SUB_CONFIG = """\
name: "{name}"
backend: "python"
max_batch_size: 0
input [
  {{ name: "A", data_type: TYPE_FP32, dims: [ -1 ] }},
  {{ name: "B", data_type: TYPE_FP32, dims: [ -1 ] }}
]
output [
  {{ name: "SUM", data_type: TYPE_FP32, dims: [ -1 ] }},
  {{ name: "DIFF", data_type: TYPE_FP32, dims: [ -1 ] }}
]
instance_group [ {{ kind: KIND_CPU, count: 1 }} ]
"""

ADD_SUB_MODEL = """\
{imports}
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        replies = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "A").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "B").as_numpy()
            tensors = [
                pb_utils.Tensor("SUM", (a + b).astype(np.float32)),
                pb_utils.Tensor("DIFF", (a - b).astype(np.float32)),
            ]
            replies.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return replies
"""


def write_model(repo: Path, name: str, model_py: str, config: str = ADD_SUB_CONFIG) -> Path:
    folder = repo / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(config.format(name=name))
    (folder / "1" / "model.py").write_text(model_py)
    return folder


def write_add_sub(repo: Path, name: str = "add_sub", imports: Sequence[str] = ()) -> Path:
    lines = "\n".join(f"import {module}  # noqa: F401" for module in imports)
    return write_model(repo, name, ADD_SUB_MODEL.format(imports=lines))


def write_raising(repo: Path, name: str = "broken") -> Path:
    body = 'raise RuntimeError("this model refuses to be imported")\n'
    return write_model(repo, name, body + ADD_SUB_MODEL.format(imports=""))


def write_missing_dep(repo: Path, name: str = "needs_dep", module: str = "tritondoctor_no_such_module") -> Path:
    return write_model(repo, name, ADD_SUB_MODEL.format(imports=f"import {module}"))


def add_sub_repository(root: Path) -> Path:
    repo = root / "repo"
    write_add_sub(repo)
    return repo


def textblock(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
