// A Wasm heap kept as runs of bytes to write over a freshly created heap ({runs: Uint32Array of (offset, length)
// pairs, data: the runs' bytes one after the other}): the shipped snapshot's delta (shipped.js) and a visitor's
// stored snapshot (snapshot.js). A stored one keeps everything below the fresh heap's break (`fresh`: what module
// creation wrote there may differ) and, past it, only the 4 KB pages that are not all zero: a fresh heap is still zero
// there. With the default model loaded, ~21 of the heap's 75 MB are such zero pages, which a repeat visit then
// neither reads nor writes.

const PAGE = 4096;
const GAP_PAGES = 4; // zero pages between two runs kept anyway: fewer, longer writes and copies

function pageIsZero(words, at) {
  let acc = 0;
  for (let i = at, end = at + PAGE / 4; i < end; i += 8) {
    acc |= words[i] | words[i + 1] | words[i + 2] | words[i + 3] | words[i + 4] | words[i + 5] | words[i + 6] |
      words[i + 7];
    if (acc !== 0) return false;
  }
  return true;
}

// The runs of `heap` (a Uint8Array at a 4-byte-aligned offset) that a restore over a fresh heap whose break was
// `fresh` must write.
export function nonZeroRuns(heap, fresh) {
  const words = new Int32Array(heap.buffer, heap.byteOffset, heap.byteLength >> 2);
  const pages = Math.floor(heap.byteLength / PAGE);
  const firstPage = Math.min(pages, Math.ceil(fresh / PAGE));
  const runs = [0, firstPage * PAGE];
  let zeros = 0;
  for (let p = firstPage; p < pages; p++) {
    if (pageIsZero(words, p * (PAGE / 4))) {
      zeros++;
      continue;
    }
    const last = runs.length - 2;
    if (runs[last + 1] > 0 && zeros <= GAP_PAGES) { // the last run ends where these zero pages begin
      runs[last + 1] += (zeros + 1) * PAGE;
    } else {
      runs.push(p * PAGE, PAGE);
    }
    zeros = 0;
  }
  if (pages * PAGE < heap.byteLength) runs.push(pages * PAGE, heap.byteLength - pages * PAGE);
  return Uint32Array.from(runs[1] === 0 ? runs.slice(2) : runs);
}

// The runs' bytes of `heap`, as views (no copy).
export function runViews(heap, runs) {
  const views = [];
  for (let i = 0; i < runs.length; i += 2) views.push(heap.subarray(runs[i], runs[i] + runs[i + 1]));
  return views;
}

// Throws unless `runs` stay inside a heap of `heapLength` bytes and their lengths add up to `dataLength`.
export function checkRuns(runs, heapLength, dataLength, what) {
  let sum = 0;
  for (let i = 0; i < runs.length; i += 2) {
    if (runs[i] + runs[i + 1] > heapLength) throw new Error(`${what} writes outside the heap`);
    sum += runs[i + 1];
  }
  if (sum !== dataLength) throw new Error(`${what}'s runs do not match its data`);
}

// Writes the runs into `heap` (a fresh module's HEAPU8); with `fresh`, first zeroes what module creation wrote past
// that break (none when both heaps were created alike). `data`: the runs' bytes, or a file they are read from
// straight into the heap ({byteLength, readInto(target, offset)}: snapshot-stores.js).
export function applyRuns(heap, { runs, data, fresh = null }, brk = null) {
  if (fresh !== null && brk !== null && brk > fresh) heap.fill(0, fresh, brk);
  for (let i = 0, at = 0; i < runs.length; i += 2) {
    const target = heap.subarray(runs[i], runs[i] + runs[i + 1]);
    if (data instanceof Uint8Array) target.set(data.subarray(at, at + runs[i + 1]));
    else data.readInto(target, at);
    at += runs[i + 1];
  }
}
