"""Typed recipe configs: YAML read with ``yaml.safe_load`` into dataclasses, checked key by key.

A recipe has five top-level keys: ``task`` (a name in ``sigattn.tasks.TASKS``), ``params`` (the task's own
``Params`` dataclass), ``trainer`` (:class:`TrainerConfig`), ``optim`` (:class:`OptimConfig`) and ``sched``
(:class:`SchedConfig`). An unknown key is an error naming its path and the closest valid key; a value of the
wrong type is an error naming the key and the expected type. Nothing in a recipe executes code.

Example:
    >>> from sigattn.train.config import recipe_from_dict
    >>> r = recipe_from_dict({"task": "toy", "trainer": {"epochs": 1}, "optim": {"lr": 0.01}})
    >>> r.trainer.epochs, r.optim.lr
    (1, 0.01)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sigattn.errors import UserError
from sigattn.models.registry import ModelSpec

__all__ = [
    "ConfigError",
    "TrainerConfig",
    "OptimConfig",
    "SchedConfig",
    "Recipe",
    "load_recipe",
    "recipe_from_dict",
    "apply_overrides",
    "to_dict",
]


class ConfigError(UserError):
    """A recipe that cannot be used: unknown key, wrong type, bad value or missing file."""


class _NotFinite(ConfigError):
    """A float key given .inf or .nan."""


@dataclass
class TrainerConfig:
    """The loop. ``batch_size`` is the global batch of one forward pass, split evenly over the DDP ranks;
    one optimiser step sees ``batch_size * grad_accum`` items whatever the number of GPUs.

    ``early_stop_patience``: stop after this many consecutive validations (one every ``eval_every`` epochs)
    without a better ``val/<monitor>``; ``None`` trains all epochs. Needs a ``val`` split."""

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 32
    eval_batch_size: int | None = None
    grad_accum: int = 1
    clip_grad_norm: float | None = None
    amp: bool = True
    compile: bool = False
    ema_decay: float | None = None
    num_workers: int = 0
    checkpoint_every: int = 0
    keep_last: int = 2
    monitor: str | None = None
    monitor_mode: str | None = None
    eval_every: int = 1
    early_stop_patience: int | None = None
    log_every: int = 10
    device: str = "auto"
    num_threads: int | None = None
    seed: int = 0
    quiet: bool = False
    deterministic: bool = False
    out_dir: str = "runs"
    run_name: str | None = None

    def __post_init__(self) -> None:
        # checked here, before any training: a zero would otherwise crash mid-run (modulo by zero after the
        # first epoch) or silently train nothing (epochs <= 0) and report untrained test metrics
        positive = ["batch_size", "grad_accum", "eval_every", "log_every"]
        positive += ["max_steps"] if self.max_steps else ["epochs"]  # max_steps 0/null: epochs decide
        positive += ["eval_batch_size"] if self.eval_batch_size is not None else []
        positive += ["early_stop_patience"] if self.early_stop_patience is not None else []
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"trainer.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"trainer.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class OptimConfig:
    """Optimiser: ``adam``, ``adamw`` or ``sgd``."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class SchedConfig:
    """Learning-rate schedule per optimiser step: ``none``, ``cosine``, ``cyclic``, ``onecycle`` or ``step``
    (``lr * gamma ** (epoch // step_epochs)``, constant within an epoch)."""

    name: str = "none"
    warmup_steps: int = 0
    min_lr: float = 0.0
    max_lr: float | None = None
    step_size_up: int | None = None
    mode: str = "triangular"
    step_epochs: int = 1
    gamma: float = 0.5

    def __post_init__(self) -> None:
        if self.step_epochs < 1:
            raise ConfigError(f"sched.step_epochs must be >= 1, got {self.step_epochs}")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"sched.gamma must be in (0, 1], got {self.gamma}")


@dataclass
class Recipe:
    """A whole recipe; ``name`` (the file's stem) names the run folder ``runs/<name>/<time>/``."""

    task: str
    params: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    name: str = "recipe"
    model: ModelSpec | None = None


_CHOICES = {
    "optim.name": ("adam", "adamw", "sgd"),
    "sched.name": ("none", "cosine", "cyclic", "onecycle", "step"),
    "sched.mode": ("triangular", "triangular2"),
    "trainer.monitor_mode": (None, "min", "max"),
}


_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

# A recipe is a few hundred YAML nodes; more than this many after alias expansion is a mistake or an alias
# bomb ("billion laughs": a few lines of nested aliases that expand to 10^9 items), refused before building.
MAX_NODES = 100_000
MAX_RECIPE_BYTES = 16 * 2**20

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 8, 8, 8
_REPR.maxstring, _REPR.maxother = 120, 120


def _short(value: Any, limit: int = 200) -> str:
    """``repr(value)`` for error messages, at most ``limit`` characters, without walking all of a huge
    (or alias-shared, or recursive) structure."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of ``root`` with every alias expanded (memoised per node; stops counting above ``limit``)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [x for pair in node.value for x in pair]
        else:
            size[id(node)] = 1
            continue
        if done:
            on_path.discard(id(node))
            size[id(node)] = min(1 + sum(size[id(c)] for c in children), limit + 1)
            continue
        if id(node) in on_path:
            raise ConfigError("recursive alias (a node that contains itself)")
        on_path.add(id(node))
        stack.append((node, True))
        for c in children:
            if id(c) in on_path:
                raise ConfigError("recursive alias (a node that contains itself)")
            if id(c) not in size:
                stack.append((c, False))
    return size[id(root)]


def _safe_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` that refuses alias bombs and recursive aliases (``ConfigError``, no file).

    The size is counted on the composed node graph (an alias target counted once per use) before any Python
    object is built, so a bomb costs nothing."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        n = _expanded_size(node, MAX_NODES)
        if n > MAX_NODES:
            raise ConfigError(
                f"expands to more than {MAX_NODES} YAML nodes (anchors/aliases repeated inside each other?); "
                "a recipe is far smaller: write the values out"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (and build nested dataclasses)."""
    where = f"{source}: key {path!r}" if source else f"key {path!r}"
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path, source)
            except _NotFinite:  # the type fits, the value does not: that error, not "expects X | None"
                raise
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{where} expects {_type_name(tp)}, got {type(value).__name__} {_short(value)}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where} must be one of {typing.get_args(tp)}, got {_short(value)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"{where} expects a list ({_type_name(tp)}), got {type(value).__name__} {_short(value)}"
            )
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where} expects {len(args)} items ({_type_name(tp)}), got {len(value)}")
            items = [_convert(v, a, f"{path}[{i}]", source) for i, (v, a) in enumerate(zip(value, args))]
        else:
            inner = args[0] if args else Any
            items = [_convert(v, inner, f"{path}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} expects a mapping ({_type_name(tp)}), got {type(value).__name__}")
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {
            _convert(k, kt, path, source): _convert(v, vt, f"{path}.{k}", source) for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, source)
    if tp is float:
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "3e-4" (no dot) as a string; accept plain numerals
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} expects float, got {type(value).__name__} {_short(value)}")
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            value = math.inf
        if not math.isfinite(value):
            # .inf / .nan (or 1e999) would pass here and fail mid-training (a NaN loss, a FloatingPointError)
            raise _NotFinite(
                f"{where} must be a finite number, got {value} (no setting takes .inf or .nan; "
                "null means 'none' where a key allows it)"
            )
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} expects int, got {type(value).__name__} {_short(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{where} expects bool (true/false), got {type(value).__name__} {_short(value)}"
            )
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} expects str, got {type(value).__name__} {_short(value)}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where} expects {_type_name(tp)}, got {type(value).__name__} {_short(value)}")
    return value


def _build(cls: type, data: Any, path: str, source: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, naming unknown keys and their closest valid key."""
    where = f"{source}: " if source else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}section {path or '<top>'!r} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean {(path + '.' if path else '') + close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}unknown key {_short(full)}{hint} (valid keys of {path or 'the recipe'}: {', '.join(fields)})"
            )
        value = _convert(value, hints[key], full, source)
        if full in _CHOICES and value not in _CHOICES[full]:
            raise ConfigError(f"{where}key {full!r} must be one of {_CHOICES[full]}, got {_short(value)}")
        kwargs[key] = value
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(
            f"{where}missing required key(s) {', '.join(repr(f'{path}.{m}'.lstrip('.')) for m in missing)}"
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # a Params __post_init__ check
        raise ConfigError(f"{where}section {path or '<top>'!r}: {e}") from e


def _parse_scalar(text: str, override: str) -> Any:
    try:
        return _safe_yaml(text)
    except (yaml.YAMLError, RecursionError):
        return text
    except ConfigError as e:
        raise ConfigError(f"override {_short(override, 80)}: {e}") from None


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``a.b=value`` overrides (values parsed as YAML scalars/flow collections) to a raw recipe dict."""
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"override {_short(ov)} is not of the form key.sub=value")
        key, text = ov.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {_short(ov)} has an empty key")
        node = raw
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {_short(ov)}: {'.'.join(parts[: i + 1])!r} is not a section")
            node = nxt
        node[parts[-1]] = _parse_scalar(text, ov)
    return raw


def recipe_from_dict(raw: dict, name: str = "recipe", source: str = "") -> Recipe:
    """Build a :class:`Recipe` from a plain dict (the YAML document), checking every key and type."""
    from sigattn.tasks import TASKS, get_task

    where = f"{source}: " if source else ""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}a recipe must be a mapping with keys task, params, trainer, optim, sched")
    raw = dict(raw)
    stored = raw.pop("name", None)  # present in configs written by the engine (config.yaml, checkpoints)
    name = stored if isinstance(stored, str) and stored else name
    top = {"task", "params", "model", "trainer", "optim", "sched"}
    for key in raw:
        if key not in top:
            close = difflib.get_close_matches(str(key), sorted(top), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}unknown key {_short(key)}{hint} (valid top-level keys: {', '.join(sorted(top))})"
            )
    task = raw.get("task")
    if not isinstance(task, str):
        raise ConfigError(
            f"{where}key 'task' is required and must be a string (one of {', '.join(sorted(TASKS))})"
        )
    if task not in TASKS:
        close = difflib.get_close_matches(task, list(TASKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}unknown task {task!r}{hint} (valid tasks: {', '.join(sorted(TASKS))})")
    task_cls = get_task(task)
    params_cls = getattr(task_cls, "Params", None)
    params = raw.get("params") or {}
    model = _model_spec(task_cls, task, params, raw.get("model"), source)
    if params_cls is not None and dataclasses.is_dataclass(params_cls):
        params = _build(params_cls, params, "params", source)
    return Recipe(
        task=task,
        params=params,
        trainer=_build(TrainerConfig, raw.get("trainer"), "trainer", source),
        optim=_build(OptimConfig, raw.get("optim"), "optim", source),
        sched=_build(SchedConfig, raw.get("sched"), "sched", source),
        name=name,
        model=model,
    )


def _model_spec(task_cls: type, task: str, params: Any, section: Any, source: str) -> ModelSpec | None:
    """Check a recipe's ``model:`` section against the constructor of the model it names.

    A task with models declares ``model_domain`` (a domain of :mod:`sigattn.models.registry`), ``default_model``
    and ``model_inputs`` (constructor arguments its data decides: not recipe keys). Keys of older recipes that
    now belong here (the task's ``moved_to_model``: ``params.<old>`` -> ``model.<new>``; ``"**"`` as ``<new>``:
    ``params.<old>`` was a mapping of constructor arguments, each key ``k`` -> ``model.k``; a mapping
    ``{model name: <new>, "*": <new>}`` as ``<new>``: the new name depends on the model, ``None`` = no counterpart)
    are carried over with one warning. ``params`` (the raw mapping) loses those keys.
    """
    import warnings

    from sigattn.models.registry import model_options, model_spec

    where = f"{source}: " if source else ""
    domain = getattr(task_cls, "model_domain", None)
    if domain is None:
        if section is not None:
            raise ConfigError(f"{where}task {task!r} takes no 'model' section (its model is fixed)")
        return None
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}section 'model' must be a mapping, got {type(section).__name__}")
    section = dict(section)
    carried = []
    if isinstance(params, dict):
        for old, new in getattr(task_cls, "moved_to_model", {}).items():
            if old not in params:
                continue
            value = params.pop(old)
            if isinstance(new, dict):  # the key's new name depends on the model: {model name: key, "*": key}
                name = section.get("name", getattr(task_cls, "default_model", None))
                new = new.get(name, new.get("*"))
                if new is None:
                    raise ConfigError(
                        f"{where}params.{old} has no counterpart in model {name!r}; remove it (see the model's "
                        "keys in its constructor's docstring)"
                    )
            if new == "**":  # a mapping of constructor arguments (e.g. EEG's params.model_kwargs)
                if not isinstance(value, dict):
                    raise ConfigError(f"{where}params.{old} must be a mapping, got {type(value).__name__}")
                moved = {f"{old}.{k}": (k, v) for k, v in value.items()}
            else:
                moved = {old: (new, value)}
            for old_key, (key, v) in moved.items():
                if key in section and section[key] != v:
                    raise ConfigError(
                        f"{where}params.{old_key}={_short(v)} and model.{key}={_short(section[key])} disagree; "
                        f"params.{old_key} is an old spelling of model.{key}: keep only model.{key}"
                    )
                section[key] = v
                carried.append(f"params.{old_key} -> model.{key}")
    if carried:
        warnings.warn(
            f"{where}{', '.join(carried)}: model settings belong in the recipe's 'model' section now; "
            "read as such (move them there to silence this)",
            FutureWarning,
            stacklevel=3,
        )
    inputs = set(getattr(task_cls, "model_inputs", ()))
    try:
        spec = model_spec(domain, section, getattr(task_cls, "default_model", ""), inputs)
    except ValueError as e:
        raise ConfigError(f"{where}{e}") from None
    # types (and finite numbers) as for every other section
    options = _build(model_options(domain, spec.name, provided=inputs), spec.kwargs, "model", source)
    return ModelSpec(spec.name, {k: getattr(options, k) for k in spec.kwargs})


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with the safe loader; clear errors for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"recipe file not found: {str(p)!r}" + (" (it is a directory)" if p.is_dir() else "")
        )
    size = p.stat().st_size
    if size > MAX_RECIPE_BYTES:
        raise ConfigError(f"{p}: {size} bytes is not a recipe (the limit is {MAX_RECIPE_BYTES} bytes)")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save the recipe as UTF-8"
        ) from None
    try:
        raw = _safe_yaml(text)
    except yaml.YAMLError as e:
        # PyYAML's message spans lines (problem, context, file position): one line here
        raise ConfigError(f"{p}: not valid YAML: {' '.join(str(e).split())}") from e
    except RecursionError:
        raise ConfigError(f"{p}: YAML nested too deeply to be a recipe") from None
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a recipe must be a YAML mapping, got {type(raw).__name__}")
    return raw


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Load ``path`` (YAML), apply ``key.sub=value`` overrides and check everything.

    Args:
        path: the recipe file.
        overrides: strings such as ``"optim.lr=3e-4"`` or ``"trainer.clip_grad_norm=null"``.

    Returns:
        The typed :class:`Recipe`; its ``name`` is the file's stem.

    Raises:
        ConfigError: (a ``ValueError``) naming the file and the offending key.

    Example:
        >>> r = load_recipe("recipes/toy.yaml", ["optim.lr=0.01"])  # doctest: +SKIP
    """
    raw = apply_overrides(read_yaml(path), list(overrides))
    return recipe_from_dict(raw, name=Path(path).stem, source=str(path))


def to_dict(recipe: Recipe) -> dict:
    """Plain, YAML/``weights_only``-safe dict of a recipe (stored in run folders and checkpoints)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    d = plain(recipe)
    model = d.pop("model", None)
    if model is not None:
        d["model"] = {"name": model["name"], **model["kwargs"]}
    return {"name": d.pop("name"), **d}
