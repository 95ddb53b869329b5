// "Similar photos": the cosine similarity of the photos' embeddings (Float32Array, one per classified photo).

export function norm(v) {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

export function cosine(a, b, normA = norm(a), normB = norm(b)) {
  if (a.length !== b.length || !normA || !normB) return NaN;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot / (normA * normB);
}

// Every photo's similarity to `picked` (photos without an embedding, e.g. failed ones, get NaN).
export function similarities(photos, picked) {
  const base = picked.embedding;
  const baseNorm = base ? norm(base) : 0;
  const out = new Map();
  for (const p of photos) {
    out.set(p.id, base && p.embedding ? cosine(base, p.embedding, baseNorm, p.embeddingNorm ?? norm(p.embedding)) : NaN);
  }
  return out;
}
