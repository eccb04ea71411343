"""Just enough PromQL reading to list the series an expression selects: metric names and their
label matchers. Not a parser: it relies on the expressions being well-formed (promtool checks
that in `make deploy-test`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that are PromQL syntax, not metric names.
KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2", "inf", "nan",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w:$.])[a-zA-Z_:][\w:]*")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]


def selectors(expr: str) -> list[Selector]:
    """The metric selectors of ``expr``, in order (function names and keywords left out)."""
    matcher_sets: list[tuple[Matcher, ...]] = []

    def keep_braces(match: re.Match[str]) -> str:
        matcher_sets.append(tuple(
            Matcher(label, op, value) for label, op, value in _MATCHER.findall(match.group())
        ))
        return f"\x00{len(matcher_sets) - 1}\x00"

    text = _BRACES.sub(keep_braces, expr)
    text = _STRING.sub('""', text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    found = []
    for match in _NAME.finditer(text):
        name = match.group()
        rest = text[match.end():].lstrip(" \t\n")
        if name.lower() in KEYWORDS or rest.startswith("("):
            continue
        braces = re.match(r"\x00(\d+)\x00", rest)
        found.append(Selector(name, matcher_sets[int(braces.group(1))] if braces else ()))
    return found
