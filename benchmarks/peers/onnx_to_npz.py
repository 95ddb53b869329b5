"""ONNX model → one .npz (initializers + the node list as JSON under "__graph__") for the plain-numpy peer,
which runs in Pyodide where the `onnx` package is not available. Runs natively (needs `onnx`)."""
import json
import sys

import numpy as np


def convert(onnx_path, npz_path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(onnx_path)
    arrays = {f"t{i}": numpy_helper.to_array(t) for i, t in enumerate(m.graph.initializer)}
    names = {t.name: f"t{i}" for i, t in enumerate(m.graph.initializer)}
    nodes = []
    for n in m.graph.node:
        attrs = {}
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            attrs[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, (list, tuple)) or hasattr(v, "__len__") and not isinstance(v, str) else v)
        nodes.append({"op": n.op_type, "inputs": [names.get(i, "v:" + i) if i else "" for i in n.input],
                      "outputs": ["v:" + o for o in n.output], "attrs": attrs})
    graph = {"nodes": nodes, "input": "v:" + m.graph.input[0].name, "output": "v:" + m.graph.output[0].name}
    arrays["__graph__"] = np.frombuffer(json.dumps(graph).encode(), np.uint8)
    np.savez(npz_path, **arrays)
    return npz_path


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
