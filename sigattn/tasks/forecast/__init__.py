"""Multivariate forecasting on the Time-Series-Library protocol with CI / CD / CCM channel strategies.

``ForecastTask`` (registered as ``"forecast"``) drives the engine; ``data`` loads and checks series, ``splits``
holds TSLib's borders and the train-only scaler, ``metrics`` the MSE/MAE and ARI, ``plots`` the report figures.
pandas and matplotlib are imported only inside the functions that need them.
"""

from sigattn.tasks.forecast.data import SeriesFrame, WindowDataset, from_dataframe, from_long, load_csv
from sigattn.tasks.forecast.metrics import adjusted_rand_index, forecast_metrics
from sigattn.tasks.forecast.splits import StandardScaler, n_windows, split_borders
from sigattn.tasks.forecast.task import ForecastParams, ForecastTask

__all__ = [
    "ForecastParams",
    "ForecastTask",
    "SeriesFrame",
    "StandardScaler",
    "WindowDataset",
    "adjusted_rand_index",
    "forecast_metrics",
    "from_dataframe",
    "from_long",
    "load_csv",
    "n_windows",
    "split_borders",
]
