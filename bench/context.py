"""What a benchmark is handed, and what it hands back."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ratio_line

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


@dataclass
class Run:
    quick: bool
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def record(self, **figures: Any) -> None:
        self.results.update(figures)

    def target(self, key: str, comparison: str, threshold: float) -> bool:
        """Compare a recorded figure with its target, print the verdict and keep it for the results file."""
        value = self.results[key]
        met = bool(_COMPARISONS[comparison](value, threshold))
        self.targets[key] = {"target": f"{comparison} {threshold:g}", "met": met}
        ratio_line(key, float(value), f"{comparison} {threshold:g}", met)
        return met

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
