"""emotion-onnx: torch-free emotion classification on onnxruntime.

The runtime imports only onnxruntime, tokenizers and numpy. The build stage (export, INT8,
fine-tuning, Lambda bundles) is the separate `emotion_onnx_export` package, which needs the
`export` extra and imports this one, never the reverse.
"""

from .classifier import EmotionClassifier, default_model_dir
from .errors import EmotionOnnxError, IntegrityError, ManifestError, ModelNotFoundError
from .manifest import Manifest, load_manifest

__version__ = "0.1.0"

__all__ = [
    "EmotionClassifier",
    "EmotionOnnxError",
    "IntegrityError",
    "Manifest",
    "ManifestError",
    "ModelNotFoundError",
    "default_model_dir",
    "load_manifest",
    "__version__",
]
