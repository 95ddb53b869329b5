// site-packages as one buffer, kept with the memory snapshot. The restored heap has numpy and wasmvision imported
// but Pyodide's file system lives in JS and starts empty: any later import or data read (an ONNX importer, a numpy
// submodule) needs the files. Writing them back from this copy takes ~10 ms; unpacking the wheels again took
// ~240 ms (Pyodide's unpackArchive, and about the same with the browser's DecompressionStream per member).

// Every file under `dir`: { data: Uint8Array, index: [[path, offset, length], ...] }.
export function packTree(FS, dir) {
  const index = [];
  const parts = [];
  let size = 0;
  const walk = (path) => {
    for (const name of FS.readdir(path)) {
      if (name === "." || name === "..") continue;
      const full = `${path}/${name}`;
      const mode = FS.stat(full).mode;
      if (FS.isDir(mode)) walk(full);
      else if (FS.isFile(mode)) {
        const bytes = FS.readFile(full);
        index.push([full, size, bytes.byteLength]);
        parts.push(bytes);
        size += bytes.byteLength;
      }
    }
  };
  walk(dir);
  const data = new Uint8Array(size);
  parts.forEach((bytes, i) => data.set(bytes, index[i][1]));
  return { data, index };
}

// { data, index } -> Map path -> bytes (views into data), or null when the index does not fit the data.
export function treeFiles(packed) {
  const { data, index } = packed ?? {};
  if (!(data instanceof Uint8Array) || !Array.isArray(index)) return null;
  const files = new Map();
  for (const entry of index) {
    const [path, offset, length] = Array.isArray(entry) ? entry : [];
    if (typeof path !== "string" || !path.startsWith("/") || !Number.isInteger(offset) || !Number.isInteger(length) ||
      offset < 0 || length < 0 || offset + length > data.byteLength) return null;
    files.set(path, data.subarray(offset, offset + length));
  }
  return files;
}

export function writeTree(FS, files) {
  const made = new Set();
  for (const [path, bytes] of files) {
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (!made.has(parent)) {
      FS.mkdirTree(parent);
      made.add(parent);
    }
    FS.writeFile(path, bytes, { canOwn: true }); // views into the record: no copy
  }
}
