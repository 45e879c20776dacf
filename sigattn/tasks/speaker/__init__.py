"""Speaker verification with ECAPA-TDNN: data, augmentation, AAM loss, scoring, the ``speaker`` Task, inference.

``sigattn.tasks.speaker.embed(model, files_or_waveforms)`` extracts embeddings (see ``inference``).
"""

from .inference import embed, embed_features, export_onnx

__all__ = ["embed", "embed_features", "export_onnx"]
