"""Test setup for the layer tests.

SpeechBrain (used here as a reference implementation) puts lazy modules into ``sys.modules`` whose
``__file__`` lookup imports optional packages (k2) and raises ``ImportError``. Hypothesis scans
``sys.modules`` for constants before each example and would crash on them, so each such module is
marked as already seen by Hypothesis before a test runs.
"""

from __future__ import annotations

import sys

import pytest


def _hide_broken_lazy_modules() -> None:
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - hypothesis internals moved
        return
    seen = getattr(providers, "_seen_modules", None)
    if seen is None:
        return
    for module in list(sys.modules.values()):
        if id(module) in seen:
            continue
        try:
            getattr(module, "__file__", None)
        except Exception:
            seen.add(id(module))


@pytest.fixture(autouse=True)
def _hypothesis_safe_modules():
    _hide_broken_lazy_modules()
    yield
