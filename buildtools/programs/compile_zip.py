"""Run by Pyodide's Python (3.12): a zip's .py members (all, or those named in a JSON list) become sourceless
bytecode in their place, as `pyodide py-compile` does, deflated at level 9, with every docstring made "". That is
as small as -OO (numpy: 3.08 -> 2.62 MB) but keeps asserts, and numpy's add_docstring, which refuses the None that
-OO leaves unless the interpreter itself runs with -OO, still gets a str.

    python3.12 compile_zip.py SRC.zip DST.zip [MEMBERS.json]
"""

import ast, importlib.util, json, sys, zipfile

class BlankDocstrings(ast.NodeTransformer):
    def blank(self, node):
        self.generic_visit(node)
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            first.value.value = ""
        return node
    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = blank

src, dst = sys.argv[1:3]
only = set(json.loads(open(sys.argv[3]).read())) if len(sys.argv) > 3 else None
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
    for info in zin.infolist():
        data, name = zin.read(info), info.filename
        if name.endswith(".py") and (only is None or name in only):
            tree = BlankDocstrings().visit(ast.parse(data, name))
            code = compile(tree, name, "exec", dont_inherit=True, optimize=0)
            data = importlib._bootstrap_external._code_to_hash_pyc(code, importlib.util.source_hash(data), False)
            name += "c"
        out = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        out.external_attr, out.compress_type = info.external_attr, zipfile.ZIP_DEFLATED
        zout.writestr(out, data)
