"""URL builders kept between the apps the tests make.

Every test makes its own app, and werkzeug turns each of the app's ~130 rules into two URL-building functions,
written as Python syntax trees and compiled: about 50 ms of every test, more than most tests' own work. Two rules
with the same path, domain part and no defaults get the same function: it reaches the rule's converters and query
encoding only through its first argument, the rule it is bound to, and closes over nothing. So the tests compile
each once and bind it to every later rule of that shape. Rules with defaults (whose values the builder folds in
through the rule's converters) are compiled as werkzeug compiles them. The server itself is untouched: it makes one
app per process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule

# werkzeug's own (a private method: should a release drop it, the tests run without the keeping, and
# tests/infra/test_url_builders.py says so).
_compile_builder = getattr(Rule, "_compile_builder", None)
_builders: dict[tuple[Any, ...], Callable[..., tuple[str, str]]] = {}


def _kept_builder(rule: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
    assert _compile_builder is not None
    if rule.defaults or rule.map is None or not hasattr(rule, "_trace"):
        return _compile_builder(rule, append_unknown)
    domain = rule.host if rule.map.host_matching else rule.subdomain
    key = (rule.rule, rule.map.host_matching, domain, rule.merge_slashes, tuple(rule._trace), append_unknown)
    builder = _builders.get(key)
    if builder is None:
        builder = _builders[key] = _compile_builder(rule, append_unknown)
    return builder


def keep_url_builders() -> None:
    if _compile_builder is not None:
        Rule._compile_builder = _kept_builder  # type: ignore[method-assign]
