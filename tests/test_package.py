"""The core library imports without the domain extras (torchaudio, speechbrain, mne, pandas, matplotlib)."""

import subprocess
import sys

OPTIONAL = ["torchaudio", "speechbrain", "mne", "moabb", "braindecode", "pandas", "matplotlib", "onnxruntime"]


def test_core_imports_without_optional_dependencies():
    code = (
        "import sys\n"
        "import sigattn, sigattn.layers, sigattn.features, sigattn.models, sigattn.synthetic, sigattn.train\n"
        f"bad = [m for m in {OPTIONAL!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    leaked = [m for m in out.stdout.strip().split(",") if m]
    assert leaked == [], f"core import pulled optional dependencies: {leaked}"


def test_version_is_exposed():
    import sigattn

    assert sigattn.__version__.count(".") == 2
