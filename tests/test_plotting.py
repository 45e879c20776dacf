"""The shared figure helpers: Agg pyplot, PNG saved into a new folder, figure closed."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from sigattn.plotting import pyplot, save_png  # noqa: E402


@pytest.mark.parametrize("tight", ["layout", "bbox", "none"])
def test_save_png_writes_a_png_in_a_new_folder_and_closes_the_figure(tmp_path, tight):
    plt = pyplot()
    assert plt.get_backend().lower() == "agg"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_png(fig, tmp_path / "a" / "b" / "f.png", dpi=50, tight=tight)
    assert path == tmp_path / "a" / "b" / "f.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.number not in plt.get_fignums()
