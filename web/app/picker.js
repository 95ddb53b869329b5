// The model picker: one option per model ("MobileNetV2 · int8 · 4.7 MB"), then "Open your own model…".

import { modelLabel } from "./format.js";
import { ui } from "./view.js";

export const OPEN_OWN = "__open__";

export function fillPicker(models, current, ready) {
  const select = ui.modelSelect;
  select.replaceChildren();
  for (const m of models) {
    const option = document.createElement("option");
    option.value = m.key;
    option.textContent = modelLabel(m);
    option.title = [m.description, m.builtin === false ? `your file ${m.file}` : ""].filter(Boolean).join(" · ");
    select.append(option);
  }
  const openOwn = document.createElement("option");
  openOwn.value = OPEN_OWN;
  openOwn.textContent = "Open your own model…";
  select.append(openOwn);
  if (current) select.value = current;
  else {
    const placeholder = document.createElement("option");
    placeholder.textContent = ready ? "No model loaded" : "Loading…";
    placeholder.value = "";
    placeholder.disabled = true;
    select.prepend(placeholder);
    select.value = "";
  }
  select.disabled = !ready;
  // A user's model without class names: offer to add a labels file.
  const m = models.find((x) => x.key === current);
  ui.labelsOpen.hidden = !(m && m.builtin === false && !m.labels);
}
