"""`embedworker healthcheck`: asks a running daemon's /healthz, at the address `http_listen` says.

The container image's HEALTHCHECK runs it as `python -m embedworker.healthcheck`, which imports
only the settings and the standard library (a quarter of a second in the image, where the full
command line takes twice as long), so probing every 30 s costs next to nothing. Exit 0 when the
daemon answers 200, 1 otherwise (what Docker and Podman expect of a health check), with the
reason.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from embedworker.config import ConfigError, Settings, load_settings

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
DEFAULT_TIMEOUT_S = 4.0  # below the image's HEALTHCHECK --timeout=5s
# A daemon listening on every address is asked on the loopback of the same family.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
_SHOWN_BODY_CHARS = 300


@dataclass(frozen=True)
class HealthResult:
    healthy: bool
    message: str


def healthz_url(http_listen: str) -> str:
    """The /healthz URL of a daemon listening on ``http_listen`` (``host:port``, an IPv6 host
    in brackets, as the configuration's pattern guarantees)."""
    host, _, port = http_listen.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    host = _WILDCARDS.get(host, host)
    return f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"


def probe(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> HealthResult:
    """GET /healthz of the daemon that ``settings`` describe."""
    if not settings.http_listen:
        return HealthResult(False, "http_listen is off, so there is no /healthz to ask "
                                   "(set it, e.g. EMBEDWORKER_HTTP_LISTEN=127.0.0.1:9464)")
    url = healthz_url(settings.http_listen)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read(_SHOWN_BODY_CHARS).decode("utf-8", "replace")
            return HealthResult(response.status == 200, f"{url}: {response.status} {body}")
    except urllib.error.HTTPError as exc:
        body = exc.read(_SHOWN_BODY_CHARS).decode("utf-8", "replace")
        return HealthResult(False, f"{url}: {exc.code} {body}")
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable, malformed
        reason = getattr(exc, "reason", exc)
        return HealthResult(False, f"{url}: {reason}")


def run(settings: Settings) -> int:
    result = probe(settings)
    print(("healthy: " if result.healthy else "unhealthy: ") + result.message,
          file=sys.stdout if result.healthy else sys.stderr)
    return EXIT_HEALTHY if result.healthy else EXIT_UNHEALTHY


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"unhealthy: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    return run(settings)


if __name__ == "__main__":
    raise SystemExit(main())
