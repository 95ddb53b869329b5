"""wasmvision: private image classification with numpy, natively and in the browser (Pyodide).

    import wasmvision
    clf = wasmvision.load()      # the default model (see wasmvision.default_model), or load("model.wvb")
    result = clf.classify("photo.jpg", top_k=5)       # or an (H, W, 3) uint8 array; (N, H, W, 3) -> a list
    result.to_dict()
    for r in clf.classify_many(paths):                 # one Result per input; a failure is r.error
        ...
    mine = clf.train({"cat": [...], "dog": [...]})     # your own labels; mine.save("pets.wvh")
    mine = wasmvision.load(head="pets.wvh")            # later: the default model with that head
"""

from .bundle import BundleError
from .classifier import Classifier, Prediction, Result, load
from .custom import CustomClassifier
from .head_format import HeadError
from .head_train import TrainingError
from .preprocess import ImageError
from .simd import EngineError

__version__ = "0.1.0"

__all__ = ["load", "Classifier", "CustomClassifier", "Prediction", "Result", "BundleError", "EngineError",
           "HeadError", "ImageError", "TrainingError", "__version__"]
