"""Puts the two settings podman needs on this kind of machine into containers.conf.

`make image-test` runs it with the host's python3 (standard library only):
`python3 tests/image/containers_conf.py [/etc/containers/containers.conf]`. Settings already
there are kept; a key of ours that is set differently is replaced in its section.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

DEFAULT_PATH = Path("/etc/containers/containers.conf")
# section -> key -> the TOML value to set
SETTINGS: dict[str, dict[str, str]] = {
    "engine": {"runtime": '"runc"'},
    "containers": {"default_ulimits": '["nofile=1024:1024", "nproc=4096:4096"]'},
}
HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def with_setting(text: str, section: str, key: str, value: str) -> str:
    """``text`` with ``key = value`` in ``[section]``: replaced there, or added under its header,
    or in a new section at the end."""
    lines = text.splitlines()
    key_line = re.compile(rf"^\s*{re.escape(key)}\s*=")
    current: str | None = None
    header_at: int | None = None
    for index, line in enumerate(lines):
        header = HEADER.match(line)
        if header:
            current = header.group(1).strip()
            if current == section:
                header_at = index
        elif current == section and key_line.match(line):
            lines[index] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    if header_at is None:
        lines += ["", f"[{section}]", f"{key} = {value}"]
    else:
        lines.insert(header_at + 1, f"{key} = {value}")
    return "\n".join(lines).lstrip("\n") + "\n"


def main(path: Path) -> None:
    text = path.read_text() if path.exists() else ""
    wanted = [(section, key, value)
              for section, values in SETTINGS.items() for key, value in values.items()]
    for section, key, value in wanted:
        text = with_setting(text, section, key, value)
    parsed = tomllib.loads(text)  # never leave a file podman cannot read
    for section, key, value in wanted:
        assert parsed[section][key] == tomllib.loads(f"v = {value}")["v"], (section, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"{path}: " + "; ".join(f"[{section}] {key} = {value}" for section, key, value in wanted))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH)
