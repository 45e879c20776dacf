"""``sigattn.utils.unwrap``: the one helper that strips DDP / DataParallel / ``torch.compile`` wrappers."""

import torch
from torch import nn

from sigattn.utils import unwrap


class _DDPLike(nn.Module):
    """A DDP-like wrapper: its only submodule is ``module`` (as in DDP, FSDP-style or user wrappers)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


class _HasModuleAttr(nn.Module):
    """A user's model that happens to name one of several submodules ``module``: not a wrapper."""

    def __init__(self) -> None:
        super().__init__()
        self.module = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)


def test_plain_module_is_returned_as_is():
    net = nn.Linear(3, 2)
    assert unwrap(net) is net
    user = _HasModuleAttr()
    assert unwrap(user) is user


def test_ddp_like_wrappers_are_stripped():
    net = nn.Linear(3, 2)
    assert unwrap(_DDPLike(net)) is net
    assert unwrap(nn.DataParallel(net)) is net  # the real class (CPU: it only holds the module)

    class NotAModule:  # an engine object holding the model (DeepSpeed-style), not an nn.Module
        def __init__(self, module):
            self.module = module

    assert unwrap(NotAModule(net)) is net


def test_compiled_module_is_stripped():
    net = nn.Linear(3, 2)
    compiled = torch.compile(net)  # wraps lazily: nothing is compiled until it is called
    assert compiled is not net and unwrap(compiled) is net


def test_nested_wrappers_are_stripped_in_any_order():
    net = nn.Linear(3, 2)
    assert unwrap(_DDPLike(torch.compile(net))) is net  # DDP of a compiled model
    assert unwrap(torch.compile(_DDPLike(net))) is net  # a compiled DDP model
    assert unwrap(_DDPLike(_DDPLike(torch.compile(_DDPLike(net))))) is net


def test_engine_and_tasks_share_the_one_helper():
    import sigattn.train as train
    from sigattn.train import devices, trainer

    assert train.unwrap is unwrap and devices.unwrap is unwrap and trainer.unwrap is unwrap
