"""Builds the image from the Dockerfile as it is, on a stand-in for its base image when that base
is not on this machine (it cannot be pulled here).

The stand-in is Debian bookworm's own Python 3.11 (mmdebstrap from Debian's packages), with
`python` and `pip` on the PATH and without Debian's EXTERNALLY-MANAGED marker, as the official
python image has them, and without documentation, manual pages and translations, as Debian's
-slim images are. It is tagged with the Dockerfile's base name and a label naming its recipe, so
a later run reuses it; a base image without that label (the real one) is used as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.image.podman import inspect_image, podman

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
IMAGE = "localhost/embedworker:image-test"
STANDIN_LABEL = "org.embedworker.standin-base"
BUILD_TIMEOUT_S = 1200.0

BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
BASE_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
# mmdebstrap runs these on the host with the new root file system as $1.
BASE_HOOKS = (
    'ln -s /usr/bin/python3 "$1/usr/local/bin/python"',
    'ln -s /usr/bin/pip3 "$1/usr/local/bin/pip"',
    'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
)
BASE_CONFIG = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)

# What pip in the build needs to reach PyPI the way it does on this machine: the CA bundle and
# the site-wide pip configuration (which names that bundle), read-only at the same paths. The
# per-user configuration is left out: it points pip at directories of this machine's disk.
HOST_CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
CONTAINER_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
HOST_PIP_CONFIG = (Path("/etc/pip.conf"), Path("/etc/xdg/pip"))


@dataclass(frozen=True)
class Base:
    name: str
    standin: bool
    built_s: float | None  # None: reused


def dockerfile_base(dockerfile: Path = DOCKERFILE) -> str:
    """The one external image the Dockerfile's stages start FROM."""
    stages: set[str] = set()
    bases: set[str] = set()
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            if match.group(1).lower() not in stages:
                bases.add(match.group(1))
            if match.group(2):
                stages.add(match.group(2).lower())
    assert len(bases) == 1, f"expected one base image in {dockerfile}, found {sorted(bases)}"
    return bases.pop()


def local_name(reference: str) -> str:
    """The name podman stores a Docker Hub short name under (``python:3.11-slim`` →
    ``docker.io/library/python:3.11-slim``), so that ``FROM`` finds it without a registry."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return reference
    return f"docker.io/{reference}" if slash else f"docker.io/library/{reference}"


def base_recipe() -> str:
    """Names the stand-in's recipe; a change to it builds the stand-in again."""
    parts = (BASE_SUITE, *BASE_PACKAGES, *BASE_DPKG_OPTIONS, *BASE_HOOKS, *BASE_CONFIG)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def ensure_base() -> Base:
    name = local_name(dockerfile_base())
    if podman("image", "exists", name, check=False).returncode == 0:
        labels = inspect_image(name)["Config"].get("Labels") or {}
        if labels.get(STANDIN_LABEL) in (None, base_recipe()):
            return Base(name, standin=STANDIN_LABEL in labels, built_s=None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="embedworker-base-") as folder:
        tarball = Path(folder) / "base.tar"
        command = [
            "mmdebstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
            *(f"--dpkgopt={option}" for option in BASE_DPKG_OPTIONS),
            *(f"--customize-hook={hook}" for hook in BASE_HOOKS),
            BASE_SUITE, str(tarball),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                                check=False)
        assert result.returncode == 0, f"mmdebstrap failed:\n{result.stderr[-3000:]}"
        changes = [*BASE_CONFIG, f"LABEL {STANDIN_LABEL}={base_recipe()}"]
        podman("import", *(arg for change in changes for arg in ("--change", change)),
               "--message", "stand-in built by tests/image from Debian's packages",
               str(tarball), name, timeout=BUILD_TIMEOUT_S)
    return Base(name, standin=True, built_s=time.monotonic() - started)


def build_mounts() -> list[str]:
    mounts = [f"{HOST_CA_BUNDLE}:{CONTAINER_CA_BUNDLE}:ro"] if HOST_CA_BUNDLE.exists() else []
    mounts += [f"{path}:{path}:ro" for path in HOST_PIP_CONFIG if path.exists()]
    cert = os.environ.get("PIP_CERT")
    if cert and Path(cert).exists() and cert != CONTAINER_CA_BUNDLE:
        mounts.append(f"{cert}:{cert}:ro")
    return [arg for mount in mounts for arg in ("--volume", mount)]


def build_image(tag: str = IMAGE) -> float:
    """``podman build`` of the repository's Dockerfile, reusing cached layers; seconds taken.

    ``--format docker`` keeps HEALTHCHECK (the OCI image format has no such field),
    ``--pull=never`` uses the local base, ``--network host`` lets pip reach PyPI."""
    started = time.monotonic()
    podman("build", "--pull=never", "--format", "docker", "--network", "host", *build_mounts(),
           "--file", str(DOCKERFILE), "--tag", tag, str(REPO), timeout=BUILD_TIMEOUT_S)
    return time.monotonic() - started
