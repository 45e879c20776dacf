"""One model registry per domain: a name builds a model class, and a recipe's ``model:`` section is checked
against that class's constructor.

A recipe names its model and sets the constructor's arguments in one section::

    model: {name: ecapa, channels: 1024, attention: eca}

The task supplies what its data decides (input channels, classes, window lengths): those arguments are not
recipe keys. Everything else is checked like the rest of a recipe (unknown key -> the nearest valid key; wrong
type -> the key and the expected type), from the constructor's signature and type hints, so a new constructor
argument is a recipe key with no further code.

Example:
    >>> from sigattn.models.registry import create_model, model_names
    >>> ", ".join(model_names("forecast"))
    'dlinear, itransformer, patchtst, tsmixer'
    >>> create_model("forecast", "dlinear", seq_len=96, pred_len=24, channel_strategy="ci").channel_strategy
    'ci'
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = [
    "MODELS",
    "ModelSpec",
    "create_model",
    "model_class",
    "model_names",
    "model_options",
    "model_spec",
    "register_model",
]

#: domain -> model name -> class, or ``"module:Class"`` imported on first use (so that naming a model never
#: imports another domain's dependencies).
MODELS: dict[str, dict[str, type[nn.Module] | str]] = {
    "speaker": {
        "ecapa": "sigattn.models.ecapa:ECAPATDNN",
        "speechbrain": "sigattn.models.ecapa_speechbrain:SpeechBrainECAPA",
    },
    "eeg": {"dbconformer": "sigattn.models.dbconformer:DBConformer"},
    "forecast": {
        "dlinear": "sigattn.models.forecasting.dlinear:DLinear",
        "itransformer": "sigattn.models.forecasting.itransformer:ITransformer",
        "patchtst": "sigattn.models.forecasting.patchtst:PatchTST",
        "tsmixer": "sigattn.models.forecasting.tsmixer:TSMixer",
    },
}


@dataclass
class ModelSpec:
    """A recipe's ``model:`` section: a model ``name`` of a domain and the constructor arguments the recipe
    sets (the task adds what its data decides). ``{"name": n, **kwargs}`` is its mapping form."""

    name: str
    kwargs: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, **self.kwargs}


def register_model(domain: str, name: str, cls: type[nn.Module] | str) -> None:
    """Make ``cls`` (a class, or ``"module:Class"``) available to recipes of ``domain`` as ``model.name``."""
    models = MODELS.setdefault(domain, {})
    key = name.lower()
    if key in models:
        raise ValueError(f"register_model: {domain} model {name!r} is already registered")
    if not isinstance(cls, str) and not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_model: expected an nn.Module subclass or 'module:Class', got {cls!r}")
    models[key] = cls


def model_names(domain: str) -> list[str]:
    """The model names of ``domain``, sorted."""
    if domain not in MODELS:
        raise ValueError(f"unknown model domain {domain!r}; valid domains: {', '.join(sorted(MODELS))}")
    return sorted(MODELS[domain])


def model_class(domain: str, name: str) -> type[nn.Module]:
    """The class registered as ``name`` in ``domain``; ``ValueError`` listing the valid names otherwise."""
    names = model_names(domain)
    if not isinstance(name, str) or name.lower() not in MODELS[domain]:
        raise ValueError(f"unknown {domain} model {name!r}; valid models: {', '.join(names)}")
    target = MODELS[domain][name.lower()]
    if isinstance(target, str):
        module, cls = target.split(":")
        target = getattr(importlib.import_module(module), cls)
    return target


def model_options(domain: str, name: str, provided: Iterable[str] = ()) -> type:
    """A dataclass whose fields are the constructor arguments of ``name`` that a recipe may set: every
    keyword argument except those in ``provided`` (decided by the data). Its field types are the constructor's
    type hints, its defaults the constructor's; the recipe reader checks a ``model:`` section against it."""
    cls = model_class(domain, name)
    fields = []
    provided = set(provided)
    for p, hints in _parameters(cls):
        if p.name in provided:
            continue
        typ = hints.get(p.name, Any)
        if p.default is inspect.Parameter.empty:
            fields.append((p.name, typ))
        elif isinstance(p.default, (list, dict, set)):
            fields.append((p.name, typ, dataclasses.field(default_factory=lambda d=p.default: type(d)(d))))
        else:
            fields.append((p.name, typ, dataclasses.field(default=p.default)))
    # required (no default) fields first, as dataclasses require
    fields.sort(key=lambda f: len(f) == 3)
    return dataclasses.make_dataclass(f"{cls.__name__}Options", fields)


def _parameters(cls: type) -> list[tuple[inspect.Parameter, dict]]:
    """The keyword parameters of ``cls.__init__`` with their type hints; where it passes ``**kwargs`` on to a
    base class, the base's parameters too (e.g. the forecasters' CCM settings live in ``Forecaster``)."""
    out: list[tuple[inspect.Parameter, dict]] = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass in (nn.Module, object) or "__init__" not in vars(klass):
            continue
        init = vars(klass)["__init__"]
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001 - an unresolvable hint: the key is still checked, its type is not
            hints = {}
        params = list(inspect.signature(init).parameters.values())[1:]
        for p in params:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in seen:
                seen.add(p.name)
                out.append((p, hints))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return out


def create_model(domain: str, name: str, **kwargs: Any) -> nn.Module:
    """Build the ``domain`` model registered as ``name`` with ``kwargs`` (data-decided and recipe arguments)."""
    return model_class(domain, name)(**kwargs)


def model_spec(
    domain: str,
    section: ModelSpec | Mapping[str, Any] | None,
    default: str,
    provided: Iterable[str] = (),
) -> ModelSpec:
    """A checked :class:`ModelSpec` from a ``model:`` mapping (``{"name": ..., **constructor arguments}``), a
    ModelSpec, or None (the ``default`` model with its constructor's defaults). An unknown name or key is a
    ``ValueError`` naming the nearest valid one; a key in ``provided`` (decided by the data) is refused."""
    if isinstance(section, ModelSpec):
        section = section.as_dict()
    section = dict(section or {})
    name = section.pop("name", default)
    names = model_names(domain)
    if not isinstance(name, str) or name.lower() not in names:
        close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model.name {name!r}{hint} (valid {domain} models: {', '.join(names)})")
    name = name.lower()
    provided = set(provided)
    valid = [f.name for f in dataclasses.fields(model_options(domain, name, provided))]
    for key in section:
        if key in provided:
            raise ValueError(
                f"model.{key} is decided by the task's data and params, not by the model section; remove it"
            )
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"; did you mean 'model.{close[0]}'?" if close else ""
            raise ValueError(
                f"unknown key 'model.{key}'{hint} (valid keys of model {name}: {', '.join(valid)})"
            )
    return ModelSpec(name, section)
