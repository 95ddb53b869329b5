// The photo detail: a modal dialog with the photo's top 5 (or its error) and "Show similar photos". <dialog>
// gives Escape to close and keeps Tab inside; focus goes back to the photo that opened it.

import { percent } from "./grid.js";

export class Detail {
  #dialog;
  #photo = null;
  #opener = null;

  constructor(dialog, { onSimilar }) {
    this.#dialog = dialog;
    const $ = (id) => dialog.querySelector(`#${id}`);
    this.parts = { img: $("detail-img"), title: $("detail-title"), error: $("detail-error"), top: $("detail-top"),
      similar: $("detail-similar"), close: $("detail-close") };
    this.parts.close.addEventListener("click", () => dialog.close());
    this.parts.similar.addEventListener("click", () => {
      const photo = this.#photo;
      dialog.close();
      if (photo) onSimilar(photo);
    });
    // A click on the backdrop (outside the dialog's box) closes it, as on most photo sites.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) {
        const r = dialog.getBoundingClientRect();
        const inside = event.clientX >= r.left && event.clientX <= r.right &&
          event.clientY >= r.top && event.clientY <= r.bottom;
        if (!inside) dialog.close();
      }
    });
    dialog.addEventListener("close", () => {
      this.#photo = null;
      this.parts.img.removeAttribute("src");
      this.#opener?.focus();
      this.#opener = null;
    });
  }

  open(photo, opener) {
    const { img, title, error, top, similar } = this.parts;
    this.#photo = photo;
    this.#opener = opener;
    title.textContent = photo.name;
    if (photo.thumb) {
      img.src = photo.thumb.url;
      img.hidden = false;
    } else {
      img.hidden = true;
    }
    top.replaceChildren();
    error.hidden = photo.error === undefined;
    error.textContent = photo.error ?? "";
    for (const t of photo.top ?? []) {
      const li = document.createElement("li");
      li.dataset.testid = "album-top-item";
      li.dataset.index = String(t.index);
      li.dataset.probability = String(t.probability);
      const label = document.createElement("span");
      label.textContent = t.label;
      const prob = document.createElement("span");
      prob.className = "prob";
      prob.textContent = percent(t.probability);
      const bar = document.createElement("span");
      bar.className = "album-bar";
      bar.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.style.width = `${Math.max(0, Math.min(1, t.probability)) * 100}%`;
      bar.append(fill);
      li.append(label, prob, bar);
      top.append(li);
    }
    top.setAttribute("aria-label", `Top ${photo.top?.length ?? 0} labels`);
    similar.disabled = !photo.embedding;
    this.#dialog.showModal();
    (similar.disabled ? this.parts.close : similar).focus();
  }
}
