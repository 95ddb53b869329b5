// Uses every call of the wasmvision module as a TypeScript user would; checked with `tsc --noEmit` by
// tests/test_module_package.py against dist/ installed as the "wasmvision" package. Lines marked with a
// ts-expect-error directive must NOT compile: the types reject them.
import * as wasmvision from "wasmvision";
import { WasmvisionError, type ClassifyResult, type ErrorKind, type ImageInput, type Progress } from "wasmvision";

async function main(file: File, img: HTMLImageElement, canvas: HTMLCanvasElement, video: HTMLVideoElement) {
  const builtins = await wasmvision.listModels({ baseUrl: "/wasmvision/" });
  const first: string = builtins[0].key;
  const sizes: number[] = builtins.map((m) => m.bytes);
  const engines: readonly wasmvision.Engine[] = wasmvision.ENGINES;
  const kinds: readonly ErrorKind[] = wasmvision.ERROR_KINDS;
  // @ts-expect-error the lists are read-only
  wasmvision.ENGINES.push("gpu");

  const clf = await wasmvision.load({
    model: first,
    engine: "auto",
    baseUrl: new URL("/wasmvision/", location.href),
    onProgress: (p: Progress) => console.log(p.stage, p.loaded, p.total, p.label),
  });
  const own = await wasmvision.load({ model: file, name: "mine", labels: ["cat", "dog"], engine: "numpy" });
  const fromUrl = await wasmvision.load({ model: "models/x.wvb", labels: new Blob(["a\nb\n"]) });
  await wasmvision.load();
  const album = await wasmvision.load({ workers: 2 });
  const both: ClassifyResult = await album.classify(img, { topK: 1, embedding: true });
  const features: Float32Array | undefined = both.embedding;

  const r: ClassifyResult = await clf.classify(img, { topK: 5 });
  const best: { index: number; label: string; probability: number } = r.top[0];
  const ms: number = r.timings_ms.total + r.timings_ms.inference;
  const engine: "numpy" | "simd" | undefined = r.engine;
  const key: string = r.model.key;
  const inputs: ImageInput[] = [file, img, canvas, video, new OffscreenCanvas(4, 4),
    await createImageBitmap(canvas), new ImageData(2, 2), "photo.jpg", new URL("photo.jpg", location.href)];
  const many: ClassifyResult[] = await clf.classify(inputs);
  const one: ClassifyResult = await clf.classify("photo.jpg");
  const v: Float32Array = await clf.embed(img);
  const vs: Float32Array[] = await clf.embed([img, canvas]);
  const classes: number | undefined = clf.model.classes;
  const running: "numpy" | "simd" | null = clf.engine;
  const pyodide: string = clf.runtime.pyodideVersion;
  const stats = await clf.stats();
  const downloaded: number = stats.bytesReceived;
  const custom: wasmvision.CustomClassifier = await clf.train({ cat: [img, file], dog: [canvas, "dog.jpg"] }, {
    name: "pets",
    onProgress: (p: wasmvision.TrainProgress) => console.log(p.stage, p.loaded, p.total),
  });
  const mine: ClassifyResult = await custom.classify(video, { topK: 2 });
  const fromVectors: ClassifyResult[] = await custom.classify([v, await clf.embed(canvas)]);
  await clf.train({ cat: [v, v], dog: [img, canvas] });
  const names: readonly string[] = custom.labels;
  const estimate: number | null = custom.head.accuracy;
  const saved: Blob = await custom.save();
  const again: wasmvision.CustomClassifier = await wasmvision.load({ model: first, head: saved });
  const byUrl: wasmvision.CustomClassifier = await wasmvision.load({ head: "heads/pets.wvh" });
  await again.dispose();
  await byUrl.dispose();
  await custom.dispose();
  // @ts-expect-error: each label maps to an array of images
  await clf.train({ cat: img });
  // @ts-expect-error: a plain classifier has no labels of a head to save
  await clf.save();
  const trainKind: ErrorKind = "TooFewExamplesError";
  await own.dispose();
  await fromUrl.dispose();

  try {
    await clf.classify(img, { topK: 0 });
  } catch (err) {
    if (err instanceof WasmvisionError) {
      const kind: ErrorKind = err.kind;
      const message: string = err.message;
      const index: number | undefined = err.index;
      if (kind === "ImageError" || kind === "ModelError" || kind === "SetupError") console.log(message, index);
    }
  }

  // @ts-expect-error: a number is not an image
  await clf.classify(42);
  // @ts-expect-error: topK is a number
  await clf.classify(img, { topK: "5" });
  // @ts-expect-error: no such engine
  await wasmvision.load({ engine: "gpu" });
  // @ts-expect-error: the result of embed is a Float32Array, not a result
  const wrong: ClassifyResult = await clf.embed(img);
  // @ts-expect-error: not an error kind
  const badKind: ErrorKind = "OopsError";
  // @ts-expect-error: the model is read-only
  clf.model.key = "other";
  await clf.dispose();
  return [first, sizes, best, ms, engine, key, many, one, v, vs, classes, running, pyodide, downloaded, wrong, badKind,
    mine, names, estimate, trainKind, fromVectors];
}

export { main };
