// Turning what the user chose (a multiple file input, a folder input, a drop of files or folders) into a list of
// {file, name} with the photo's path inside the chosen folder as its name. Nothing is read here: a File is a handle.

const IMAGE_EXTENSIONS = /\.(jpe?g|png|gif|webp|bmp|avif|ico|jfif|pjpeg|pjp|apng)$/i;

// Image files by type or, when the browser gives no type, by extension; folders hold other things too.
export function isImage(file) {
  return file.type ? file.type.startsWith("image/") : IMAGE_EXTENSIONS.test(file.name);
}

export function fromInput(input) {
  return [...input.files].map((file) => ({ file, name: file.webkitRelativePath || file.name }));
}

function readAll(reader) {
  // readEntries hands out a folder's entries in batches until it returns an empty one.
  return new Promise((resolve, reject) => {
    const out = [];
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) resolve(out);
      else {
        out.push(...batch);
        next();
      }
    }, reject);
    next();
  });
}

async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, name: entry.fullPath.replace(/^\//, "") });
  } else if (entry.isDirectory) {
    for (const child of await readAll(entry.createReader())) await walk(child, out);
  }
}

// A drop: folders are walked (their entries must be taken from the DataTransfer before the event returns).
export async function fromDrop(dataTransfer) {
  const entries = [...(dataTransfer.items || [])]
    .filter((item) => item.kind === "file")
    .map((item) => item.webkitGetAsEntry?.());
  if (!entries.length || entries.some((e) => !e)) {
    return [...dataTransfer.files].map((file) => ({ file, name: file.name }));
  }
  const out = [];
  for (const entry of entries) {
    try {
      await walk(entry, out);
    } catch (err) {
      console.warn(`wasmvision album: could not read ${entry.fullPath}:`, err);
    }
  }
  return out;
}
