"""Suite-wide fixtures.

SpeechBrain registers unloaded ``LazyModule`` objects in ``sys.modules`` (e.g. its k2 integration). Hypothesis
walks ``sys.modules`` reading ``__file__`` to harvest constants, which triggers those imports and fails when
the optional package (k2) is absent. Giving unloaded lazy modules ``__file__ = None`` lets Hypothesis skip them
without importing anything.
"""

from __future__ import annotations

import sys

import pytest


def _defuse_speechbrain_lazy_modules() -> None:
    importutils = sys.modules.get("speechbrain.utils.importutils")
    lazy_cls = getattr(importutils, "LazyModule", None)
    if lazy_cls is None:
        return
    for mod in list(sys.modules.values()):
        if isinstance(mod, lazy_cls) and mod.__dict__.get("lazy_module") is None:
            mod.__dict__.setdefault("__file__", None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    _defuse_speechbrain_lazy_modules()


@pytest.fixture(autouse=True)
def _speechbrain_lazy_modules_defused():
    _defuse_speechbrain_lazy_modules()
    yield
    _defuse_speechbrain_lazy_modules()
