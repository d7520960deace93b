"""Whether this process runs in a container, and which kind: the one container fact
(`SystemFacts.container`; `SystemFacts.in_container` and `RuntimeFacts.container` are views of it).

Markers, first match wins: Kubernetes' service variable or secrets mount, podman's and docker's
marker files, the init process's cgroup, systemd's `container` variable, and last a containerd
cgroup (kind "container": the runtime does not say more).
"""

from __future__ import annotations

import os
from typing import Mapping

from tritondoctor.facts.inputs import EnvReads

K8S_SECRETS = "/var/run/secrets/kubernetes.io"
PODMAN_MARKER = "/run/.containerenv"
DOCKER_MARKER = "/.dockerenv"
INIT_CGROUP = "/proc/1/cgroup"

READS = EnvReads(
    names=frozenset({"KUBERNETES_SERVICE_HOST", "container"}),
    files=(K8S_SECRETS, PODMAN_MARKER, DOCKER_MARKER, INIT_CGROUP),
)

_CGROUP_MARKERS = (("kubepods", "kubernetes"), ("docker", "docker"), ("libpod", "podman"), ("lxc", "lxc"))


def _init_cgroup() -> str:
    try:
        with open(INIT_CGROUP, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def detect(environ: Mapping[str, str]) -> str | None:
    """"kubernetes", "podman", "docker", "lxc", the `container` variable's value, "container"
    (a containerd cgroup), or None."""
    if environ.get("KUBERNETES_SERVICE_HOST") or os.path.isdir(K8S_SECRETS):
        return "kubernetes"
    if os.path.exists(PODMAN_MARKER):
        return "podman"
    if os.path.exists(DOCKER_MARKER):
        return "docker"
    cgroup = _init_cgroup()
    for marker, kind in _CGROUP_MARKERS:
        if marker in cgroup:
            return kind
    if environ.get("container"):
        return environ["container"]
    if "containerd" in cgroup:
        return "container"
    return None
