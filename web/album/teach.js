// "Teach labels": select photos in the grid, name what they show, train a head on their embeddings in the worker,
// and label the whole album with it (the head alone runs on each photo's kept embedding: no photo is read again).
// Heads are kept in this browser (heads-store.js) and can be exported and imported as .wvh files.

import { deleteHead, listHeads, saveHead } from "./heads-store.js";

const $ = (id) => document.getElementById(id);

export class Teach {
  #grid;
  #classifier; // () => Promise of the album's classifier
  #load; // wasmvision.load
  #say; // (text) -> announced to screen readers
  #showError;
  #selecting = false;
  #selected = new Set(); // photo ids
  #examples = new Map(); // label -> Set of photo ids
  #custom = null; // the CustomClassifier whose labels are shown, or null: the model's own
  #heads = []; // stored heads

  constructor({ grid, classifier, load, say, showError }) {
    this.#grid = grid;
    this.#load = load;
    this.#classifier = classifier;
    this.#say = say;
    this.#showError = showError;
    this.ui = { select: $("teach-select"), selected: $("teach-selected"), name: $("teach-name"), add: $("teach-add"),
      labels: $("teach-labels"), train: $("teach-train"), heads: $("teach-heads"), exportButton: $("teach-export"),
      importButton: $("teach-import"), importInput: $("teach-import-input"), remove: $("teach-delete"),
      status: $("teach-status") };
    const u = this.ui;
    u.select.addEventListener("click", () => this.#setSelecting(!this.#selecting));
    u.name.addEventListener("input", () => this.#refresh());
    u.name.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !u.add.disabled) this.#addLabel();
    });
    u.add.addEventListener("click", () => this.#addLabel());
    u.train.addEventListener("click", () => this.#train().catch((err) => this.#fail("Training failed", err)));
    u.heads.addEventListener("change", () => this.#choose(u.heads.value).catch((err) => this.#fail("Could not use those labels", err)));
    u.exportButton.addEventListener("click", () => this.#export());
    u.importButton.addEventListener("click", () => u.importInput.click());
    u.importInput.addEventListener("change", () => {
      const file = u.importInput.files[0];
      u.importInput.value = "";
      if (file) this.#import(file).catch((err) => this.#fail(`Could not import ${file.name}`, err));
    });
    u.remove.addEventListener("click", () => this.#delete().catch((err) => this.#fail("Could not delete", err)));
    this.#loadStored().catch(() => {}); // a browser without IndexedDB here: teaching still works, unsaved
    this.#refresh();
  }

  get selecting() {
    return this.#selecting;
  }

  // A click on a photo while selecting.
  toggle(photo) {
    if (photo.error !== undefined || !photo.embedding) {
      this.#status(`${photo.name} cannot be used: it has no embedding.`);
      return;
    }
    const on = !this.#selected.has(photo.id);
    if (on) this.#selected.add(photo.id);
    else this.#selected.delete(photo.id);
    this.#mark(photo);
    this.#refresh();
  }

  // A photo just classified: labelled with the head shown, if any.
  async photoAdded(photo) {
    this.#mark(photo);
    if (this.#custom && photo.embedding) await this.#relabel([photo], this.#custom);
  }

  // Clear: the album's photos are gone, and with them the selection and the examples.
  cleared() {
    this.#selected.clear();
    this.#examples.clear();
    this.#refresh();
  }

  #setSelecting(on) {
    this.#selecting = on;
    this.ui.select.setAttribute("aria-pressed", String(on));
    this.ui.select.textContent = on ? "Done selecting" : "Select photos";
    document.body.classList.toggle("album-selecting", on);
    for (const p of this.#grid.photos) this.#mark(p);
    this.#say(on ? "Selecting: activate photos to select them, then name their label." : "Selection done.");
  }

  #mark(photo) {
    const button = photo.parts?.button;
    if (!button) return;
    const selected = this.#selected.has(photo.id);
    photo.el.classList.toggle("selected", selected);
    if (this.#selecting) button.setAttribute("aria-pressed", String(selected));
    else button.removeAttribute("aria-pressed");
    const label = [...this.#examples].find(([, ids]) => ids.has(photo.id))?.[0];
    photo.el.dataset.example = label ?? "";
  }

  #addLabel() {
    const name = this.ui.name.value.trim();
    if (!name || !this.#selected.size) return;
    for (const ids of this.#examples.values()) for (const id of this.#selected) ids.delete(id);
    const ids = this.#examples.get(name) ?? new Set();
    for (const id of this.#selected) ids.add(id);
    this.#examples.set(name, ids);
    for (const [label, set] of this.#examples) if (!set.size) this.#examples.delete(label);
    const n = this.#selected.size;
    this.#selected.clear();
    this.ui.name.value = "";
    for (const p of this.#grid.photos) this.#mark(p);
    this.#refresh();
    this.#say(`${n} photo${n > 1 ? "s" : ""} added to the label ${name}; ${ids.size} in all.`);
    this.ui.name.focus();
  }

  #refresh() {
    const u = this.ui;
    u.selected.textContent = `${this.#selected.size} selected`;
    u.add.disabled = !this.#selected.size || !u.name.value.trim();
    u.labels.replaceChildren(...[...this.#examples].map(([label, ids]) => {
      const li = document.createElement("li");
      li.dataset.testid = "teach-label";
      li.dataset.label = label;
      li.dataset.count = String(ids.size);
      const text = document.createElement("span");
      text.textContent = `${label}: ${ids.size} photo${ids.size > 1 ? "s" : ""}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "button-secondary";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove the label ${label}`);
      remove.addEventListener("click", () => {
        this.#examples.delete(label);
        for (const p of this.#grid.photos) this.#mark(p);
        this.#refresh();
        this.#say(`Label ${label} removed.`);
      });
      li.append(text, " ", remove);
      return li;
    }));
    u.train.disabled = this.#examples.size < 1;
    const stored = Number(u.heads.value) > 0;
    u.exportButton.disabled = !this.#custom;
    u.remove.disabled = !stored;
  }

  async #train() {
    const clf = await this.#classifier();
    const byId = new Map(this.#grid.photos.map((p) => [p.id, p]));
    const examples = Object.fromEntries([...this.#examples].map(([label, ids]) =>
      [label, [...ids].map((id) => byId.get(id)?.embedding).filter(Boolean)]));
    this.ui.train.disabled = true;
    this.#status("Training…");
    try {
      const custom = await clf.train(examples, { name: [...this.#examples.keys()].join(", ").slice(0, 120) });
      const blob = await custom.save();
      const record = { name: custom.head.name, labels: [...custom.labels], model: clf.model.key, blob,
        accuracy: custom.head.accuracy };
      const id = await saveHead(record).catch(() => null); // not kept (private mode): still used now
      if (id !== null) this.#heads.push({ ...record, id });
      this.#fillHeads(id);
      await this.#use(custom);
      const acc = custom.head.accuracy;
      this.#status(`Trained on ${Object.values(examples).flat().length} photos; the album now shows your labels` +
        `${acc === null ? "" : ` (estimated accuracy ${Math.round(acc * 100)}%)`}.`);
    } finally {
      this.#refresh();
    }
  }

  async #use(custom) {
    const old = this.#custom;
    this.#custom = custom;
    if (old && old !== custom) old.dispose();
    const photos = this.#grid.photos.filter((p) => p.embedding);
    if (custom) await this.#relabel(photos, custom);
    else for (const p of photos) if (p.modelTop) p.top = p.modelTop;
    this.#grid.relabelled();
    this.#refresh();
  }

  async #relabel(photos, custom) {
    const results = await custom.classify(photos.map((p) => p.embedding), { topK: Math.min(5, custom.labels.length) });
    photos.forEach((p, i) => {
      p.modelTop ??= p.top;
      p.top = results[i].top;
    });
    this.#grid.relabelled();
  }

  async #choose(value) {
    if (!value) {
      await this.#use(null);
      this.#status("The album shows the model's own labels.");
      return;
    }
    const head = this.#heads.find((h) => String(h.id) === value);
    const clf = await this.#classifier();
    await this.#use(await this.#open(head.blob, clf));
    this.#status(`The album shows the labels ${head.labels.join(", ")}.`);
  }

  #open(blob, clf) {
    return this.#load({ model: clf.model.key, head: blob });
  }

  async #import(file) {
    const clf = await this.#classifier();
    const custom = await this.#open(file, clf);
    const record = { name: custom.head.name, labels: [...custom.labels], model: clf.model.key, blob: file,
      accuracy: custom.head.accuracy };
    const id = await saveHead(record).catch(() => null);
    if (id !== null) this.#heads.push({ ...record, id });
    this.#fillHeads(id);
    await this.#use(custom);
    this.#status(`Imported ${file.name}: the album shows the labels ${custom.labels.join(", ")}.`);
  }

  async #export() {
    if (!this.#custom) return;
    const blob = await this.#custom.save();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${this.#custom.labels.join("-").replace(/[^\w-]+/g, "_").slice(0, 60) || "labels"}.wvh`;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  async #delete() {
    const id = Number(this.ui.heads.value);
    if (!id) return;
    await deleteHead(id);
    this.#heads = this.#heads.filter((h) => h.id !== id);
    this.#fillHeads(null);
    await this.#use(null);
    this.#status("Deleted. The album shows the model's own labels.");
  }

  async #loadStored() {
    this.#heads = await listHeads();
    this.#fillHeads(null);
  }

  #fillHeads(selectedId) {
    const options = [new Option("The model's own", "")];
    for (const h of this.#heads) {
      options.push(new Option(`${h.labels.join(", ")}${h.model ? ` · ${h.model}` : ""}`, String(h.id)));
    }
    this.ui.heads.replaceChildren(...options);
    this.ui.heads.value = selectedId === null || selectedId === undefined ? (this.#custom ? this.ui.heads.value : "")
      : String(selectedId);
    this.#refresh();
  }

  #status(text) {
    this.ui.status.textContent = text;
  }

  #fail(what, err) {
    this.#showError(`${what}: ${err.message}`);
    this.#status(`${what}.`);
    this.#refresh();
  }
}
