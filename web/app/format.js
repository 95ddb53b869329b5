// How the page writes sizes, times and model names. One word per weight storage kind: fp32, fp16, int8.

export function formatBytes(n) {
  if (!n) return "0 kB";
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
}

export function mb(bytes) {
  return (bytes / 1e6).toFixed(1);
}

export function fmtMs(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return "–";
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

// "MobileNetV2 · int8 · 4.7 MB"; a user's model says so.
export function modelLabel(m) {
  const parts = [m.title || m.name, m.storage, m.bytes ? formatBytes(m.bytes) : ""].filter(Boolean);
  return parts.join(" · ") + (m.builtin === false ? " (your file)" : "");
}

// The results card's short form: "MobileNetV2 · int8".
export function modelShort(m) {
  return [m.title || m.name, m.storage].filter(Boolean).join(" · ");
}
