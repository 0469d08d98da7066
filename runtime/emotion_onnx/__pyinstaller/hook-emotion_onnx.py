"""PyInstaller hook for emotion_onnx: the package's data (the embedded model, the tokenizer, the
server's page), and none of the build side or the optional engines.

An app that wants an optional part imports it itself and PyInstaller follows that import: OpenVINO
(`import openvino`, for an OpenVINO variant), pandas and pyspark for Spark. The runtime imports them
only when asked, so leaving them out keeps a desktop app to onnxruntime, tokenizers and numpy."""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("emotion_onnx", excludes=["__pyinstaller"])
excludedimports = [
    "torch",
    "transformers",
    "optimum",
    "emotion_onnx_export",
    "openvino",
    "nncf",
    "pyspark",
    "pandas",
    "pyarrow",
]
