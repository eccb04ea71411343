"""The podman command line, and the containers a test starts (each removed when the test ends)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COMMAND_TIMEOUT_S = 120.0


class PodmanError(AssertionError):
    """A podman command failed; the message carries its output."""


def podman(
    *args: str, timeout: float = COMMAND_TIMEOUT_S, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise PodmanError(
            f"podman {' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
        )
    return result


def env_args(env: Mapping[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]


def inspect_image(image: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman("image", "inspect", image).stdout)
    return data[0]


@dataclass
class Container:
    name: str

    def inspect(self) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(podman("container", "inspect", self.name).stdout)
        return data[0]

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def exit_code(self) -> int:
        code: int = self.inspect()["State"]["ExitCode"]
        return code

    def healthy(self) -> bool:
        """Runs the image's HEALTHCHECK now (podman schedules it with systemd timers, which
        this machine lacks); True when it passed."""
        return podman("healthcheck", "run", self.name, check=False).returncode == 0

    def exec(self, *command: str, env: Mapping[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        return podman("exec", *env_args(env or {}), self.name, *command, check=check)

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr


@dataclass
class Containers:
    """Starts containers of one image with common options; ``remove_all`` at the end."""

    image: str
    options: Sequence[str] = ()
    started: list[Container] = field(default_factory=list)

    def run(self, env: Mapping[str, str], *command: str, options: Sequence[str] = (),
            timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """``podman run --rm``, in the foreground: a one-off command such as ``migrate``."""
        name = self._name()
        self.started.append(Container(name))
        return podman("run", "--rm", "--name", name, *self.options, *options, *env_args(env),
                      self.image, *command, timeout=timeout, check=False)

    def start(self, env: Mapping[str, str], *command: str,
              options: Sequence[str] = ()) -> Container:
        """``podman run --detach``: the daemon (the image's CMD) unless ``command`` says."""
        container = Container(self._name())
        self.started.append(container)
        podman("run", "--detach", "--name", container.name, *self.options, *options,
               *env_args(env), self.image, *command)
        return container

    def remove_all(self) -> None:
        for container in self.started:
            podman("rm", "--force", "--time", "0", container.name, check=False)
        self.started.clear()

    @staticmethod
    def _name() -> str:
        return "embedworker-image-test-" + uuid.uuid4().hex[:10]
