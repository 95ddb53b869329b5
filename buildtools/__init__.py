"""wasmvision's build steps, one concern per module; `build.py` parses the command line and calls `commands`.

Stdlib only at import time: build.py imports this package before .venv/ exists.
"""
