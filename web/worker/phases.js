// Start-up phases, for the first result's budget: named spans on the worker's clock, the Wasm compile and
// instantiate time spent inside each span, and every file the worker downloaded (from Resource Timing). stats()
// hands them to the page; benchmarks/phases.py turns them into the phase table. Times are ms since the worker's
// time origin; `origin` (epoch ms) lets a reader put them on the page's clock.

const spans = []; // {name, start, end}
const open = []; // names of the spans not yet ended, innermost last
const wasm = new Map(); // span name -> {compile_ms, instantiate_ms, modules}
const wasmEvents = []; // {kind, span, start, end}: each compile/instantiate, for when the runtime's compile ended
const started = performance.now();

const MAX_SPANS = 200; // the start-up's spans; later calls (an album's thousand photos) are not recorded

// A download running beside other work (`background`) gets a span but no Wasm compiles attributed to it.
export function begin(name, { background = false } = {}) {
  if (spans.length >= MAX_SPANS) return;
  spans.push({ name, start: performance.now(), end: null });
  if (!background) open.push(name);
}

export function end(name) {
  const span = spans.findLast((s) => s.name === name && s.end === null);
  if (span) span.end = performance.now();
  const i = open.lastIndexOf(name);
  if (i >= 0) open.splice(i, 1);
}

export async function during(name, fn, options) {
  begin(name, options);
  try {
    return await fn();
  } finally {
    end(name);
  }
}

function tally(kind, t0, api) {
  const t1 = performance.now();
  const ms = t1 - t0;
  const name = open.at(-1) ?? "outside";
  // Emscripten makes a tiny module per JS function it adds to the table: keep only the events worth seeing.
  if (ms >= 1 && wasmEvents.length < 200) wasmEvents.push({ kind, api, span: name, start: t0, end: t1 });
  const w = wasm.get(name) ?? { compile_ms: 0, instantiate_ms: 0, modules: 0 };
  w[kind] += ms;
  if (kind === "compile_ms") w.modules += 1;
  wasm.set(name, w);
}

// Pyodide compiles its runtime with instantiateStreaming and numpy's extension modules (loaded by dlopen during
// `import numpy`) with the synchronous constructors: timing them is the only way to see that cost apart. Returns the
// timed replacements for W's entry points; the Pyodide module installs them first of all patches.
export function timedWasm(W) {
  const timed = (kind, api) => {
    const fn = W[api];
    return async function (...args) {
      const t0 = performance.now();
      try {
        return await fn.apply(this, args);
      } finally {
        tally(kind, t0, api);
      }
    };
  };
  const sync = (kind, Ctor) => new Proxy(Ctor, {
    construct(target, args, newTarget) {
      const t0 = performance.now();
      try {
        return Reflect.construct(target, args, newTarget);
      } finally {
        tally(kind, t0, `new ${Ctor.name}`);
      }
    },
  });
  return {
    compile: timed("compile_ms", "compile"),
    compileStreaming: timed("compile_ms", "compileStreaming"),
    // instantiate(bytes) compiles and instantiates; reported as compile time (the part that dominates).
    instantiate: timed("compile_ms", "instantiate"),
    instantiateStreaming: timed("compile_ms", "instantiateStreaming"),
    Module: sync("compile_ms", W.Module),
    Instance: sync("instantiate_ms", W.Instance),
  };
}

function round(x) {
  return x === null || x === undefined ? null : Math.round(x * 10) / 10;
}

// What Resource Timing knows about this worker's downloads: transferSize 0 with a body means a cache hit (HTTP
// cache or the service worker).
function files(base) {
  return performance.getEntriesByType("resource").map((e) => ({
    path: e.name.startsWith(base) ? e.name.slice(base.length) : e.name,
    start: round(e.startTime), end: round(e.responseEnd), bytes: e.encodedBodySize,
    transferred: e.transferSize, worker: round(e.workerStart) || null,
  }));
}

export function phaseReport(base) {
  return {
    origin: performance.timeOrigin,
    worker_started: round(started),
    spans: spans.map((s) => ({ name: s.name, start: round(s.start), end: round(s.end) })),
    wasm: Object.fromEntries([...wasm].map(([k, v]) => [k, {
      compile_ms: round(v.compile_ms), instantiate_ms: round(v.instantiate_ms), modules: v.modules }])),
    wasm_events: wasmEvents.map((e) => ({ ...e, start: round(e.start), end: round(e.end) })),
    files: files(base),
  };
}
