"""Every docstring example in the layer modules runs and prints what it says (einops/SpeechBrain practice)."""

import doctest
import importlib

import pytest
import torch

MODULES = [
    "_masking",
    "attentive_pool",
    "cbam",
    "channel_pool",
    "channel_select",
    "eca",
    "parameter_guided",
    "registry",
    "squeeze_excite",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"sigattn.layers.{name}")
    torch.manual_seed(0)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in sigattn.layers.{name}"
    if name != "_masking":
        assert result.attempted > 0, f"no docstring example in sigattn.layers.{name}"
