// The worker's decode (web/worker/decode.js) of two trees in one Web Worker, interleaved: "before" as it was (JS
// pixels, then the one copy Python's to_memoryview makes into the heap), "after" as inference.js uses it now (a frame
// copied once into the heap, else JS pixels copied in). The heap is a WebAssembly.Memory, as Pyodide's.
import * as before from "/before/worker/decode.js";
import * as after from "/after/worker/decode.js";

const memory = new WebAssembly.Memory({ initial: 2000 });
const heap = (n) => new Uint8Array(memory.buffer, 1 << 20, n);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function beforeCall(blob) {
  const image = await before.decodeInput({ kind: "blob", blob }, 50e6);
  const dest = heap(image.pixels.length);
  dest.set(image.pixels);
  return dest;
}

async function afterCall(blob) {
  const image = await after.decodeInput({ kind: "blob", blob }, 50e6, { frames: true });
  const dest = heap(image.width * image.height * 4);
  if (image.frame) {
    await after.copyFrame(image.frame, dest);
    image.frame.close();
  } else {
    dest.set(image.pixels);
  }
  return dest;
}

self.onmessage = async ({ data: { blob, runs } }) => {
  const a = (await beforeCall(blob)).slice(), b = (await afterCall(blob)).slice();
  let differ = a.length === b.length ? 0 : -1;
  for (let i = 0; differ >= 0 && i < a.length; i++) if (a[i] !== b[i]) differ++;
  const ms = { before: [], after: [] };
  for (let i = 0; i < runs; i++) {
    for (const [name, call] of [["before", beforeCall], ["after", afterCall]]) {
      const t0 = performance.now();
      await call(blob);
      ms[name].push(performance.now() - t0);
    }
  }
  self.postMessage({ differing_bytes: differ, bytes: a.length,
    median_ms: { before: median(ms.before), after: median(ms.after) },
    min_ms: { before: Math.min(...ms.before), after: Math.min(...ms.after) } });
};
