// Exports made in the page and saved by the browser (a Blob and a download link): nothing is uploaded.
// JSON has one row per photo, like `python -m wasmvision classify --json`: the file and either the result's fields
// (top, model, engine) or an error (a one-line message).

export function rows(photos) {
  return photos.map((p) => (p.error !== undefined
    ? { file: p.name, error: p.error }
    : { file: p.name, top: p.top, model: p.model, ...(p.engine ? { engine: p.engine } : {}) }));
}

export function toJSON(photos, meta) {
  return JSON.stringify({ generator: "wasmvision album", ...meta, photos: rows(photos) }, null, 1) + "\n";
}

function cell(value) {
  const text = value === undefined || value === null ? "" : String(value);
  // Quoted when needed (RFC 4180); a leading = + - @ is defused so a spreadsheet shows it rather than runs it.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export const CSV_COLUMNS = ["file", "label", "probability", "index", "top5", "error"];

// UTF-8 with a byte-order mark: spreadsheets (Excel) otherwise read the file in the system's code page and garble
// non-ASCII file names and labels.
const BOM = "\ufeff";

export function toCSV(photos) {
  const lines = [BOM + CSV_COLUMNS.join(",")];
  for (const p of photos) {
    const best = p.top?.[0];
    const top5 = p.top ? p.top.map((t) => `${t.label} (${t.probability.toFixed(4)})`).join("; ") : "";
    lines.push([p.name, best?.label, best?.probability, best?.index, top5, p.error].map(cell).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

// Offers `text` as a file to save. The object URL is revoked once the click has been handled.
export function download(text, filename, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
