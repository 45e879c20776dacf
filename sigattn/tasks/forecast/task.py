"""The forecasting ``Task``: TSLib-protocol data, a model with a ``channel_strategy`` switch, CCM loss.

A recipe's ``params`` hold the data, protocol and loss settings; its ``model`` section names a model of
:mod:`sigattn.models.forecasting` (``model.name``: dlinear, patchtst, tsmixer, itransformer) and sets its
constructor's arguments (``model.channel_strategy``, ``model.n_clusters``, ``model.d_model``...), checked
against that constructor. The data decide ``seq_len``, ``pred_len`` and ``n_channels``.

Protocol (Time-Series-Library, with its known pitfalls fixed): ETT 12/4/4 months (15-minute variant x4),
other data 70/10/20 by time; a z-score scaler fit on the training rows only; lookback 96; every validation
and test window is evaluated (no ``drop_last``); MSE/MAE on the normalised scale (the literature's numbers)
and on the original scale. Settings ``M`` (all -> all), ``S`` (target -> target), ``MS`` (all -> target).

Loss: ``MSE + beta * L_C`` where ``L_C`` is the CCM cluster loss (``ccm`` only; Chen et al., NeurIPS 2024).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset

from sigattn.errors import DataError
from sigattn.models.forecasting.base import STRATEGIES
from sigattn.models.registry import ModelSpec, create_model, model_options, model_spec
from sigattn.tasks.forecast.data import (
    IRREGULAR_MODES,
    SeriesFrame,
    WindowDataset,
    from_dataframe,
    interpolate_missing,
    load_csv,
)
from sigattn.tasks.forecast.metrics import adjusted_rand_index, forecast_metrics
from sigattn.tasks.forecast.splits import (
    SPLIT_KINDS,
    StandardScaler,
    describe_split,
    infer_split_kind,
    n_windows,
    split_borders,
    split_reason,
)

__all__ = ["ForecastParams", "ForecastTask", "ci_linear_baseline"]

log = logging.getLogger(__name__)
FEATURES = ("M", "S", "MS")
# ForecastParams fields of recipes written before the model section, now model.<same name>
_MOVED_TO_MODEL = ("channel_strategy", "n_clusters", "revin", "kernel_size", "patch_len", "stride", "d_model",
                   "n_heads", "n_layers", "d_ff", "n_blocks", "dropout", "ccm_d_model", "ccm_temperature")  # fmt: skip


@dataclass
class ForecastParams:
    """The ``params`` section of a forecasting recipe: data, protocol and loss settings (the model's settings
    live in the recipe's ``model`` section; see :class:`ForecastTask`).

    Attributes:
        data: CSV path, ``data:<path under the shared data folder>``, or ``synthetic``.
        split: ``auto`` (from the file name, case-insensitive: ETTh*, ETTm*, else custom), ``ett_hour``,
            ``ett_minute``, ``custom``; the choice, its reason and the borders are logged and put in the report.
        features: ``M``, ``S`` or ``MS``.
        target: target column for ``S``/``MS`` (moved last, as TSLib does).
        fill_missing: ``error`` or ``interpolate`` (linear, logged).
        irregular: ``error`` (gaps in the timestamps' spacing are an error: the splits count rows, so ETT
            months would land on wrong dates) or ``allow`` (accepted, the number of gaps logged).
        seq_len: lookback ``L``; pred_len: horizon ``H``.
        beta: weight of the CCM cluster loss (``MSE + beta * L_C``; used by ``model.channel_strategy=ccm``).
        train_stride: use every n-th training window (a CPU shortcut; validation/test always use all).
        ci_baseline: also fit the least-squares channel-independent linear model (the optimum of DLinear-CI)
            and report its test MSE as ``ci_linear_mse``.
        plot_channels: channels drawn in the forecast plot.
        synthetic_groups: latent channel groups of the synthetic series (``data: synthetic``).
        synthetic_channels_per_group: channels per group.
        synthetic_length: rows.
        synthetic_noise: per-channel noise level.
        synthetic_seed: seed of the synthetic series.
    """

    data: str = "synthetic"
    split: str = "auto"
    features: str = "M"
    target: str = "OT"
    fill_missing: str = "error"
    irregular: str = "error"
    seq_len: int = 96
    pred_len: int = 96
    beta: float = 0.3
    train_stride: int = 1
    ci_baseline: bool = False
    plot_channels: int = 3
    synthetic_groups: int = 3
    synthetic_channels_per_group: int = 3
    synthetic_length: int = 4000
    synthetic_noise: float = 0.3
    synthetic_seed: int = 0

    def __post_init__(self) -> None:
        # checked when the recipe is read (one line naming the key), not when the data are loaded
        if self.features not in FEATURES:
            raise ValueError(f"params.features must be one of {FEATURES}, got {self.features!r}")
        if self.seq_len < 1 or self.pred_len < 1:
            raise ValueError(
                f"params.seq_len and params.pred_len must be >= 1, got {self.seq_len}, {self.pred_len}"
            )
        if self.train_stride < 1:
            raise ValueError(f"params.train_stride must be >= 1, got {self.train_stride}")
        if self.irregular not in IRREGULAR_MODES:
            raise ValueError(f"params.irregular must be one of {IRREGULAR_MODES}, got {self.irregular!r}")
        if self.split not in ("auto", *SPLIT_KINDS):
            raise ValueError(f"params.split must be one of {('auto', *SPLIT_KINDS)}, got {self.split!r}")


def ci_linear_baseline(train: WindowDataset, test: WindowDataset, ridge: float = 1e-3) -> float:
    """Test MSE of the least-squares linear map ``L -> H`` shared by all channels (the optimum of DLinear-CI).

    Each forecast channel is predicted from its own lookback (``MS``: the target's), as a CI model does.
    """

    def own(ds: WindowDataset) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = ds.tensors()
        return x[:, [ds.in_cols.index(c) for c in ds.out_cols]], y

    x, y = own(train)
    xs = x.reshape(-1, x.shape[-1]).double()
    ys = y.reshape(-1, y.shape[-1]).double()
    xs = torch.cat([xs, torch.ones(len(xs), 1, dtype=xs.dtype)], 1)
    gram = xs.T @ xs + ridge * torch.eye(xs.shape[1], dtype=xs.dtype)
    w = torch.linalg.solve(gram, xs.T @ ys)
    xt, yt = own(test)
    xt = xt.reshape(-1, xt.shape[-1]).double()
    pred = torch.cat([xt, torch.ones(len(xt), 1, dtype=xt.dtype)], 1) @ w
    return float(((pred - yt.reshape(-1, yt.shape[-1]).double()) ** 2).mean())


class ForecastTask:
    """Multivariate forecasting with CI / CD / CCM models (see the module docstring for the protocol).

    Args:
        params: the recipe's ``params`` (:class:`ForecastParams`): data, protocol and loss settings.
        seed: model initialisation seed.
        frame: optional in-memory series used instead of ``params.data``: a
            :class:`~sigattn.tasks.forecast.data.SeriesFrame` (e.g. from ``from_long``) or a wide DataFrame.
        model: the recipe's ``model`` section: ``{"name": <model>, **constructor arguments}`` or a
            :class:`~sigattn.models.registry.ModelSpec`; ``None`` is DLinear with its defaults (CI). Checked
            against the constructor (an unknown key names the nearest valid one); ``seq_len``, ``pred_len``
            and ``n_channels`` come from the params and the data.

    Example:
        >>> task = ForecastTask(
        ...     ForecastParams(synthetic_length=600, seq_len=24, pred_len=8),
        ...     model={"name": "dlinear", "channel_strategy": "ccm", "n_clusters": 3},
        ... )
        >>> tuple(len(task.build_datasets()[s]) for s in ("train", "val", "test"))
        (389, 53, 113)
        >>> task.model_option("channel_strategy"), task.model_option("kernel_size")
        ('ccm', 25)
    """

    name: ClassVar[str] = "forecast"
    Params: ClassVar[type] = ForecastParams
    monitor: ClassVar[str] = "mse"
    monitor_mode: ClassVar[str] = "min"

    # the recipe's model section: model.name and the constructor's arguments but those the data decide
    model_domain: ClassVar[str] = "forecast"
    default_model: ClassVar[str] = "dlinear"
    model_inputs: ClassVar[tuple[str, ...]] = ("seq_len", "pred_len", "n_channels")
    # params.<old key> of recipes written before the model section -> model.<key>
    moved_to_model: ClassVar[dict[str, str]] = {"model": "name", **{k: k for k in _MOVED_TO_MODEL}}

    def __init__(
        self,
        params: ForecastParams | None = None,
        *,
        seed: int = 0,
        frame: Any = None,
        model: ModelSpec | dict | None = None,
    ) -> None:
        self.params = params if params is not None else ForecastParams()
        self.seed = seed
        self.model = model_spec(self.model_domain, model, self.default_model, self.model_inputs)
        # In-memory data instead of params.data: a SeriesFrame or a wide pandas DataFrame (``date`` column or
        # DatetimeIndex); convert long frames with ``from_long`` first.
        self.frame = frame
        strategy = self.model_option("channel_strategy")
        if strategy not in STRATEGIES:
            raise ValueError(f"model.channel_strategy must be one of {STRATEGIES}, got {strategy!r}")
        self._datasets: dict[str, Any] | None = None
        self.labels: np.ndarray | None = None
        self.scaler: StandardScaler | None = None

    def model_option(self, key: str) -> Any:
        """The model's constructor argument ``key``: the recipe's ``model.<key>``, else the constructor's
        default (e.g. ``channel_strategy`` is ``"ci"`` for DLinear, ``"cd"`` for iTransformer)."""
        if key in self.model.kwargs:
            return self.model.kwargs[key]
        options = model_options(self.model_domain, self.model.name, self.model_inputs)
        for f in dataclasses.fields(options):
            if f.name == key:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                break
        raise KeyError(f"model {self.model.name!r} has no default for {key!r}")

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """Under DDP, CCM leaves parameters without gradient (``W_Q, W_K, W_V`` unless ``refine``)."""
        return self.model_option("channel_strategy") == "ccm"

    # ---------------------------------------------------------------- data
    @property
    def _load_fill(self) -> str:
        # "interpolate" is deferred to build_datasets, which fills split by split once the borders are known
        return "defer" if self.params.fill_missing == "interpolate" else self.params.fill_missing

    def load_frame(self) -> tuple[SeriesFrame, str]:
        """The raw series and its split kind (missing values still NaN under ``fill_missing="interpolate"``).

        Sets ``split_reason``: why that kind (the file name, or ``params.split``).
        """
        p = self.params
        self.split_reason = f"chosen by params.split={p.split}"
        if self.frame is not None:
            frame = self.frame
            if not isinstance(frame, SeriesFrame):
                frame = from_dataframe(frame, fill_missing=self._load_fill, irregular=p.irregular)
            if p.split == "auto":
                self.split_reason = "in-memory data have no file name (params.split=auto)"
            return frame, ("custom" if p.split == "auto" else p.split)
        if p.data == "synthetic":
            from sigattn.synthetic.multivariate import make_clustered_series

            s = make_clustered_series(
                p.synthetic_groups,
                p.synthetic_channels_per_group,
                p.synthetic_length,
                p.synthetic_noise,
                seed=p.synthetic_seed,
            )
            self.labels = s.labels
            kind = "custom" if p.split == "auto" else p.split
            if p.split == "auto":
                self.split_reason = "synthetic data (params.split=auto)"
            return SeriesFrame(s.data.T.astype(np.float64), s.names, None, "synthetic"), kind
        from sigattn.data_paths import resolve_data_path

        path = resolve_data_path(p.data)
        frame = load_csv(path, fill_missing=self._load_fill, irregular=p.irregular)
        kind = infer_split_kind(path.name) if p.split == "auto" else p.split
        if p.split == "auto":
            self.split_reason = f"{split_reason(path.name)} (params.split=auto)"
        return frame, kind

    def build_datasets(self) -> dict[str, Any]:
        if self._datasets is not None:
            return self._datasets
        p = self.params
        frame, kind = self.load_frame()
        if p.features != "M" or p.target in frame.columns:  # S/MS need the target; M moves it last if present
            moved = frame.move_last(p.target)
            if self.labels is not None:
                self.labels = self.labels[[frame.columns.index(c) for c in moved.columns]]
            frame = moved
        try:
            borders = split_borders(len(frame.values), p.seq_len, kind)
        except ValueError as e:  # the data are too short for the split or the lookback
            raise DataError(f"{frame.source}: {e}") from None
        tr0, tr1 = borders["train"]
        if tr1 - tr0 < p.seq_len + p.pred_len:
            raise DataError(
                f"{frame.source}: lookback + horizon ({p.seq_len} + {p.pred_len}) is longer than the training "
                f"split ({tr1 - tr0} rows)"
            )
        for split in ("val", "test"):
            a, b = borders[split]
            if n_windows(b - a, p.seq_len, p.pred_len) < 1:
                raise DataError(
                    f"{frame.source}: the {split} split ({b - a} rows) has no window of {p.seq_len}+{p.pred_len}"
                )
        if np.isnan(
            frame.values
        ).any():  # fill_missing="interpolate": split by split, never from later splits
            ends = [tr1, borders["val"][1], len(frame.values)]
            frame.values = interpolate_missing(frame.values, frame.columns, frame.source, ends=ends)
        self.scaler = StandardScaler.fit(frame.values[tr0:tr1])  # training rows only
        scaled = self.scaler.transform(frame.values).astype(np.float32)
        n = scaled.shape[1]
        in_cols = [n - 1] if p.features == "S" else list(range(n))
        self.out_cols = [n - 1] if p.features in ("S", "MS") else list(range(n))
        self.columns = [frame.columns[i] for i in in_cols]
        self.n_channels = len(in_cols)
        ds = {
            s: WindowDataset(scaled[a:b], p.seq_len, p.pred_len, in_cols, self.out_cols)
            for s, (a, b) in borders.items()
        }
        self.full = ds
        if p.train_stride > 1:
            keep = list(range(0, len(ds["train"]), p.train_stride))
            log.info(
                "train_stride=%d: using %d of %d training windows",
                p.train_stride,
                len(keep),
                len(ds["train"]),
            )
            ds["train"] = Subset(ds["train"], keep)
        self.borders, self.split_kind = borders, kind
        self.split_note = (
            f"{frame.source}: split {describe_split(borders, kind, p.seq_len, frame.dates)}; "
            f"chosen because {self.split_reason}"
        )
        log.info("%s", self.split_note)
        self._datasets = ds
        return ds

    def report_notes(self) -> list[str]:
        """Lines for the run report: which split was used, its borders and why."""
        self.build_datasets()
        return [self.split_note]

    def collate(self, items: list) -> dict[str, torch.Tensor]:
        xs, ys, idx = zip(*items)
        return {"x": torch.stack(xs), "y": torch.stack(ys), "index": torch.as_tensor(idx, dtype=torch.long)}

    # ---------------------------------------------------------------- model
    def build_model(self) -> nn.Module:
        self.build_datasets()  # n_channels comes from the data (built once, then cached)
        p = self.params
        torch.manual_seed(self.seed)
        return create_model(
            self.model_domain,
            self.model.name,
            seq_len=p.seq_len,
            pred_len=p.pred_len,
            n_channels=self.n_channels,
            **self.model.kwargs,
        )

    def _run(self, model: nn.Module, batch: dict):
        y_hat, aux = model(batch["x"], return_aux=True)
        if self.params.features == "MS":
            y_hat = y_hat[:, -1:]
        return y_hat, aux

    def loss(self, model: nn.Module, batch: dict, *, epoch: int = 0, step: int = 0):
        y_hat, aux = self._run(model, batch)
        mse = F.mse_loss(y_hat.float(), batch["y"].float())
        logs = {"mse": float(mse.detach())}
        total = mse
        if "cluster_loss" in aux:
            total = total + self.params.beta * aux["cluster_loss"]
            logs["cluster_loss"] = float(aux["cluster_loss"].detach())
        return total, logs

    def predict(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        y_hat, aux = self._run(model, batch)
        out = {"pred": y_hat.float(), "true": batch["y"].float(), "index": batch["index"]}
        if "clusters" in aux:
            out["assign"] = aux["clusters"].prob.float()
        return out

    # ---------------------------------------------------------------- evaluation
    def cluster_labels(self, assign: torch.Tensor | np.ndarray) -> np.ndarray:
        """Each channel's cluster: argmax of its assignment averaged over the windows ``(N, C, K)``."""
        a = np.asarray(assign.detach().cpu() if isinstance(assign, torch.Tensor) else assign)
        return a.mean(axis=0).argmax(axis=-1)

    def metrics(self, outputs: dict[str, torch.Tensor], split: str) -> dict[str, float]:
        pred, true = outputs["pred"].cpu().numpy(), outputs["true"].cpu().numpy()
        m = forecast_metrics(pred, true, self.scaler, self.out_cols)
        m["n_windows"] = float(len(pred))
        if "assign" in outputs:
            labels = self.cluster_labels(outputs["assign"])
            m["n_clusters_used"] = float(len(np.unique(labels)))
            if self.labels is not None and self.params.features != "S":
                m["ari"] = adjusted_rand_index(self.labels, labels)
        if split == "test" and self.params.ci_baseline and self._datasets is not None:
            m["ci_linear_mse"] = ci_linear_baseline(self.full["train"], self.full["test"])
        return m

    def plots(
        self, model: nn.Module, outputs: dict[str, torch.Tensor], split: str, out_dir: Path
    ) -> list[Path]:
        from sigattn.tasks.forecast.plots import write_plots

        return write_plots(self, model, outputs, split, Path(out_dir))

    def demo_checks(self, metrics: dict[str, float]) -> dict[str, bool]:
        """The checks that apply to this run (the demo has both; a real-data run usually neither).

        * clusters recovered (test ARI >= 0.9): only where the ARI was computed, i.e. data with known channel
          groups (synthetic) and a CCM model;
        * CCM beats the best CI linear model on test MSE: only for a CCM model (``model.channel_strategy``)
          with ``params.ci_baseline``.
        """

        def get(name: str) -> float | None:
            for key in (f"test/{name}", f"test_{name}", f"test.{name}", name):
                if key in metrics:
                    return float(metrics[key])
            return None

        ari, mse, ci = get("ari"), get("mse"), get("ci_linear_mse")
        checks: dict[str, bool] = {}
        if ari is not None:
            checks["clusters recovered: ARI >= 0.9"] = ari >= 0.9
        if self.model_option("channel_strategy") == "ccm" and mse is not None and ci is not None:
            checks["CCM beats the best CI linear model on test MSE"] = mse < ci
        return checks
