// The album grid: one button per photo (thumbnail, top-1 label and probability, file name), filtered by label
// text and ordered by name, confidence, order added or similarity. Items are real buttons in a list, so Tab,
// Enter and Space work and screen readers read each photo's label.

// Photos arriving meanwhile are put on screen together: one layout and paint per batch instead of one per photo
// (at ~25 photos/s a frame per photo cost ~3.5 ms of CPU a photo: style, layout, paint, compositor).
const SHOW_EVERY_MS = 250;

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

export function percent(p) {
  return `${(p * 100).toFixed(p >= 0.995 ? 0 : 1)}%`;
}

const ORDERS = {
  added: (a, b) => a.id - b.id,
  name: (a, b) => collator.compare(a.name, b.name) || a.id - b.id,
  // Failed photos have no confidence: they go last either way.
  confidence: (a, b) => (b.top?.[0]?.probability ?? -1) - (a.top?.[0]?.probability ?? -1) || a.id - b.id,
  "confidence-asc": (a, b) => (a.top?.[0]?.probability ?? 2) - (b.top?.[0]?.probability ?? 2) || a.id - b.id,
};

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Grid {
  #list;
  #onOpen;
  #photos = [];
  #filter = "";
  #order = "added";
  #similarity = null; // Map id -> cosine, while ordered by similarity
  #picked = null; // the photo the similarity is measured from
  #reorderTimer = 0;
  #unshown = []; // items added but not yet in the list
  #showTimer = 0;
  #onShown;

  // onOpen(photo, button) when a photo is activated; onShown() after added photos were put on screen.
  constructor(list, { onOpen, onShown = () => {} }) {
    this.#list = list;
    this.#onOpen = onOpen;
    this.#onShown = onShown;
  }

  get photos() {
    return this.#photos;
  }

  // Photos in the order shown (all of them, and those the filter lets through).
  ordered() {
    return this.#sorted();
  }

  visible() {
    return this.#sorted().filter((p) => this.#matches(p));
  }

  add(photo) {
    this.#photos.push(photo);
    photo.el = this.#render(photo);
    photo.el.hidden = !this.#matches(photo);
    this.#unshown.push(photo.el);
    this.#showTimer ||= setTimeout(() => this.flush(), SHOW_EVERY_MS);
    // Kept in place while photos arrive; re-sorted a moment later in one pass, not once per photo.
    if (this.#order !== "added") {
      clearTimeout(this.#reorderTimer);
      this.#reorderTimer = setTimeout(() => this.#reorder(), 300);
    }
  }

  // Puts the added photos on screen now.
  flush() {
    clearTimeout(this.#showTimer);
    this.#showTimer = 0;
    this.#list.append(...this.#unshown);
    this.#unshown = [];
    this.#onShown();
  }

  clear() {
    clearTimeout(this.#reorderTimer);
    clearTimeout(this.#showTimer);
    this.#showTimer = 0;
    this.#unshown = [];
    const photos = this.#photos;
    this.#photos = [];
    this.#similarity = null;
    this.#picked = null;
    this.#list.replaceChildren();
    return photos;
  }

  // After the photos' labels changed (a custom head shown, or the model's own again): labels, scores, filter, order.
  relabelled() {
    for (const p of this.#photos) {
      if (p.error !== undefined) continue;
      p.el.dataset.label = p.top[0].label;
      p.el.dataset.probability = String(p.top[0].probability);
      p.el.querySelector(".album-label").textContent = p.top[0].label;
      this.#caption(p);
      p.el.hidden = !this.#matches(p);
    }
    this.#reorder();
  }

  setFilter(text) {
    this.#filter = text.trim().toLowerCase();
    for (const p of this.#photos) p.el.hidden = !this.#matches(p);
  }

  // order: a key of ORDERS, or "similar" with similarity (Map id -> cosine) to the photo `picked` (an id).
  setOrder(order, similarity = null, picked = null) {
    this.#order = order;
    this.#similarity = order === "similar" ? similarity : null;
    this.#picked = order === "similar" ? picked : null;
    for (const p of this.#photos) this.#caption(p);
    this.#reorder();
  }

  #matches(photo) {
    if (!this.#filter) return true;
    const label = photo.top?.[0]?.label ?? "";
    return label.toLowerCase().includes(this.#filter);
  }

  #sorted() {
    if (this.#order === "similar" && this.#similarity) {
      const sim = (p) => {
        const s = this.#similarity.get(p.id);
        return Number.isFinite(s) ? s : -Infinity; // photos added since, or failed: last
      };
      return [...this.#photos].sort((a, b) => sim(b) - sim(a) || a.id - b.id);
    }
    return [...this.#photos].sort(ORDERS[this.#order] ?? ORDERS.added);
  }

  #reorder() {
    // append() moves existing nodes: focus and thumbnails stay as they are; the unshown ones join them.
    this.#unshown = [];
    this.#list.append(...this.#sorted().map((p) => p.el));
  }

  #render(photo) {
    const li = el("li", "album-item");
    li.dataset.testid = "album-item";
    li.dataset.file = photo.name;
    const button = el("button", "album-item-button");
    button.type = "button";
    if (photo.thumb) {
      const img = el("img", "album-thumb");
      img.alt = "";
      img.decoding = "async";
      img.loading = "lazy";
      img.src = photo.thumb.url;
      button.append(img);
    } else {
      const missing = el("span", "album-thumb album-thumb-missing", "!");
      missing.setAttribute("aria-hidden", "true");
      button.append(missing);
    }
    const label = el("span", "album-label");
    label.dataset.testid = "album-label";
    const meta = el("span", "album-meta");
    const name = el("span", "album-name", photo.name.split("/").pop());
    name.title = photo.name;
    const score = el("span", "album-score");
    score.dataset.testid = "album-probability";
    meta.append(name, score);
    button.append(label, meta);
    button.addEventListener("click", () => this.#onOpen(photo, button));
    li.append(button);
    if (photo.error !== undefined) {
      li.classList.add("failed");
      li.dataset.status = "error";
      label.textContent = photo.error;
      label.dataset.testid = "album-error";
    } else {
      li.dataset.status = "ok";
      li.dataset.label = photo.top[0].label;
      li.dataset.probability = String(photo.top[0].probability);
      label.textContent = photo.top[0].label;
    }
    photo.parts = { button, score };
    this.#caption(photo);
    return li;
  }

  // The score shown: the top-1 probability, or the similarity while ordered by it.
  #caption(photo) {
    const { button, score } = photo.parts;
    const sim = this.#similarity?.get(photo.id);
    if (photo.error !== undefined) {
      score.textContent = "";
      button.setAttribute("aria-label", `${photo.name}: could not be classified. ${photo.error}`);
      return;
    }
    const best = photo.top[0];
    if (Number.isFinite(sim)) {
      score.textContent = `sim ${sim.toFixed(2)}`;
      button.setAttribute("aria-label",
        `${photo.name}: ${best.label}, ${percent(best.probability)}; similarity ${sim.toFixed(2)}`);
    } else {
      score.textContent = percent(best.probability);
      button.setAttribute("aria-label", `${photo.name}: ${best.label}, ${percent(best.probability)}`);
    }
    photo.el?.classList.toggle("picked", this.#picked === photo.id);
  }
}
