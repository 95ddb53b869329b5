// The smallest page on the module: load, show progress, classify the chosen photo as an <img>.
import * as wasmvision from "../wasmvision.mjs";

const $ = (id) => document.getElementById(id);
const mb = (n) => (n / 1e6).toFixed(1);

const clf = await wasmvision.load({
  onProgress: ({ label, loaded, total }) => {
    $("progress").textContent = total ? `${label}: ${mb(loaded)} of ${mb(total)} MB` : label;
  },
});
$("progress").textContent = `Ready: ${clf.model.title} · ${clf.model.storage}.`;
window.example = { wasmvision, clf }; // for scripts (and tests) driving this page

$("file").addEventListener("change", async () => {
  const file = $("file").files[0];
  if (!file) return;
  const img = $("photo");
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  try {
    const result = await clf.classify(img, { topK: 5 });
    $("top").replaceChildren(...result.top.map((p) => {
      const li = document.createElement("li");
      li.textContent = `${p.label}: ${(p.probability * 100).toFixed(1)}%`;
      return li;
    }));
    $("progress").textContent = `Classified in ${Math.round(result.timings_ms.total)} ms.`;
  } catch (err) {
    $("progress").textContent = `${err.kind}: ${err.message}`;
  }
});
