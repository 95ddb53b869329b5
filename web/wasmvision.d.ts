// Types for wasmvision.mjs: private image classification in the browser (Python and numpy in a Web Worker).

/** What a WasmvisionError is about. */
export type ErrorKind =
  | "ImageError" // the input is not an image this browser can read, is too large, or is not a supported kind
  | "ModelError" // the model is unknown, missing from the site, damaged or not the site's (manifest sha256), or uses an unsupported operator
  | "SetupError" // the runtime could not start (the site is incomplete, a file does not match manifest.json, or the worker stopped)
  | "PrivacyError" // a request to another site was refused: wasmvision only loads files from its own origin
  | "ArgumentError" // an option is invalid (topK, engine, ...)
  | "EngineError" // the requested engine cannot run here
  | "ResourceError" // out of memory or a broken Python runtime: the worker is replaced and the models reopened; try again
  | "DisposedError" // the classifier was disposed
  | "InternalError" // a bug: the message says what failed, the console has the details
  | "EmptyLabelError" // train(): a label has no examples
  | "SingleLabelError" // train(): fewer than two labels
  | "TooFewExamplesError" // train(): a label has fewer than two examples
  | "WrongModelError"; // a custom head trained on another base model than the one it is opened with

export class WasmvisionError extends Error {
  readonly name: "WasmvisionError";
  readonly kind: ErrorKind;
  /** For an array input: the position of the input that failed. */
  readonly index?: number;
}

/** Anything classify() and embed() accept as one image. A string is a URL on this site (relative to the page), a
 * data: URL or a blob: URL. */
export type ImageInput =
  | Blob
  | HTMLImageElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | ImageBitmap
  | ImageData
  | HTMLVideoElement
  | string
  | URL;

export type Engine = "auto" | "numpy" | "simd";

/** Every engine load() accepts, in this order. */
export const ENGINES: readonly Engine[];

/** Every kind a WasmvisionError can have. */
export const ERROR_KINDS: readonly ErrorKind[];

export type ProgressStage = "start" | "runtime" | "packages" | "model" | "model-load" | "ready";

export interface Progress {
  stage: ProgressStage;
  /** Bytes downloaded so far, out of `total`, for everything this load fetches. */
  loaded: number;
  total: number;
  /** A short description of the stage, e.g. "Downloading the Python runtime". */
  label: string;
}

export interface LoadOptions {
  /** A key from the site's manifest.json (default: its default model), a URL of a .wvb/.onnx file on this site
   * (a URL on another site is a PrivacyError), a data: or blob: URL, or a File/Blob (.wvb or .onnx). */
  model?: string | URL | Blob;
  /** A display name for a model given as a URL or file. */
  name?: string;
  /** Class names for a model given as a URL or file: an array, or a text file with one label per line. */
  labels?: string[] | Blob;
  /** Which kernels run the network; "auto" picks the fastest that works here. */
  engine?: Engine;
  /** Called as the runtime and the model download and load. */
  onProgress?: (progress: Progress) => void;
  /** Where the site's files (worker.js, manifest.json, pyodide/, models/) are; default: beside wasmvision.mjs. */
  baseUrl?: string | URL;
  /** How many workers (each its own Python runtime) share the calls: an integer from 1 to 4 (default 1). Two were
   * faster than one for an album on a 2-core machine; each costs its own runtime's memory. */
  workers?: number;
  /** A custom head (.wvh) trained on this model by train(): a File/Blob, a URL on this site, a data: or blob: URL.
   * load() then resolves to a CustomClassifier; a head trained on another model is a WrongModelError. */
  head?: string | URL | Blob;
}

export interface ModelInfo {
  key: string;
  name: string;
  /** A display name, e.g. "MobileNetV2". */
  title: string;
  version: string;
  builtin: boolean;
  loaded: boolean;
  /** Size of the model file. */
  bytes: number;
  /** How the weights are stored: "fp32", "fp16", "int8", ... */
  storage: string;
  file: string;
  description: string;
  parameters?: number;
  load_ms?: number;
  /** Number of labels in the bundle (0 when it has none). */
  labels?: number;
  /** Number of classes a result can rank (the largest valid topK); 0 when unknown. */
  classes?: number;
  /** Whether embed() works with this model. */
  embedding?: boolean;
  inputShape?: number[];
  engine?: "numpy" | "simd" | null;
  engineNotice?: string | null;
}

export interface Prediction {
  index: number;
  label: string;
  probability: number;
}

export interface ClassifyResult {
  top: Prediction[];
  timings_ms: { decode: number; preprocess: number; inference: number; postprocess: number; total: number };
  model: { name: string; version: string; key: string };
  image: { width: number; height: number; format: string };
  /** The engine that ran, when the runtime reports it. */
  engine?: "numpy" | "simd";
  /** With `{embedding: true}`: the model's pooled features from the same pass of the network. */
  embedding?: Float32Array;
}

export interface ClassifyOptions {
  /** How many classes to return: an integer from 1 to model.classes, or to labels.length for a custom head
   * (default 5). */
  topK?: number;
  /** Also return the embedding (`result.embedding`), from the same pass of the network (default false). */
  embedding?: boolean;
}

export interface RuntimeStats {
  timings: Record<string, number | string>;
  /** Bytes of the files the worker loaded on this page (from the network or the HTTP cache). */
  bytesReceived: number;
  /** Bytes the worker actually fetched over the network on this page (cached files count 0). */
  networkBytes: number;
}

export interface Classifier {
  readonly model: Readonly<ModelInfo>;
  /** The engine that runs ("numpy" | "simd") when the runtime reports it, else null. */
  readonly engine: "numpy" | "simd" | null;
  readonly runtime: { pyodideVersion: string; maxPixels: number; base: string };
  classify(input: ImageInput, options?: ClassifyOptions): Promise<ClassifyResult>;
  classify(inputs: ImageInput[], options?: ClassifyOptions): Promise<ClassifyResult[]>;
  /** The model's pooled features (1280 numbers for MobileNetV2). */
  embed(input: ImageInput): Promise<Float32Array>;
  embed(inputs: ImageInput[]): Promise<Float32Array[]>;
  stats(): Promise<RuntimeStats>;
  /** Frees the model; the worker ends when the last classifier of the site is disposed. */
  dispose(): Promise<void>;
}

export type TrainStage = "embed" | "fit" | "ready";

export interface TrainProgress {
  stage: TrainStage;
  /** Examples embedded so far, out of `total`. */
  loaded: number;
  total: number;
  label: string;
}

export interface TrainOptions {
  /** Called after each example is embedded, then as the head is fitted. */
  onProgress?: (progress: TrainProgress) => void;
  /** A name for the head (kept in its file; default "custom"). */
  name?: string;
}

/** An example or input for a custom head: an image, or an embedding of its model (from embed() or
 * classify(..., {embedding: true})), which skips the network. */
export type HeadInput = ImageInput | Float32Array;

/** Each label with its examples (at least two labels, at least two examples each). */
export type Examples = Record<string, HeadInput[]> | Map<string, HeadInput[]>;

export interface HeadInfo {
  key: string;
  name: string;
  labels: readonly string[];
  method: "softmax" | "ncm";
  /** How many examples each label was trained on. */
  examples: Record<string, number>;
  /** The cross-validated accuracy estimate from training (0..1), when known. */
  accuracy: number | null;
  /** The base model the head was trained on. */
  base: { name: string; version: string; sha256: string };
  /** Milliseconds fitting the head took (after embedding), for a head trained here. */
  train_ms?: number;
}

export interface Classifier {
  /** A head on this model's embeddings with your own labels; nothing leaves the device. Errors: EmptyLabelError,
   * SingleLabelError, TooFewExamplesError, ImageError (naming the example). */
  train(examples: Examples, options?: TrainOptions): Promise<CustomClassifier>;
}

/** A model plus a custom head: classify() ranks the head's labels, with ClassifyResult's shape. */
export interface CustomClassifier extends Classifier {
  classify(input: HeadInput, options?: ClassifyOptions): Promise<ClassifyResult>;
  classify(inputs: HeadInput[], options?: ClassifyOptions): Promise<ClassifyResult[]>;
  readonly labels: readonly string[];
  readonly head: Readonly<HeadInfo>;
  /** The head's .wvh file (a few kilobytes): load({model, head}) opens it again. */
  save(): Promise<Blob>;
}

export interface BuiltinModel {
  key: string;
  name: string;
  /** A display name, e.g. "MobileNetV2". */
  title: string;
  version: string;
  storage: string;
  bytes: number;
  default: boolean;
  description: string;
  file: string;
}

export function load(options: LoadOptions & { head: string | URL | Blob }): Promise<CustomClassifier>;
export function load(options?: LoadOptions): Promise<Classifier>;

/** The site's built-in models, read from its manifest.json (no runtime is started). */
export function listModels(options?: { baseUrl?: string | URL }): Promise<BuiltinModel[]>;
