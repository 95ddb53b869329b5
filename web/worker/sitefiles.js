// Writes files into a restored interpreter's file system: the heap has numpy and wasmvision imported but Pyodide's
// file system lives in JS and starts empty, and any later import or data read (an ONNX importer, a numpy submodule)
// needs the files. They come from the wheels checked against the manifest (dylibs.js unpackForRestore), never from
// local storage: a file there is writable by any script of this origin, and a planted .pyc would run on every visit.

export function writeTree(FS, files) {
  const made = new Set();
  for (const [path, bytes] of files) {
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (!made.has(parent)) {
      FS.mkdirTree(parent);
      made.add(parent);
    }
    FS.writeFile(path, bytes, { canOwn: true }); // views into the extracted members: no copy
  }
}
