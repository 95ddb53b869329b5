"""wasmvision: private image classification with numpy, natively and in the browser (Pyodide).

    import wasmvision
    clf = wasmvision.load("dist/models/mobilenet_v2.wvb")
    result = clf.classify(rgb_uint8_array, top_k=5)
    result.to_dict()
"""

from .bundle import BundleError
from .classifier import Classifier, Prediction, Result, load
from .preprocess import ImageError
from .simd import EngineError

__version__ = "0.1.0"

__all__ = ["load", "Classifier", "Prediction", "Result", "BundleError", "EngineError", "ImageError", "__version__"]
