"""emotion-onnx: torch-free emotion classification on onnxruntime.

The runtime imports only onnxruntime, tokenizers and numpy. The export stage lives
in `emotion_onnx.export` and needs the `export` extra.
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
