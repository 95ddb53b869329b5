// The page's ways in for a file: the file picker, the drop zone (click, Enter, Space), a drop anywhere on the page,
// and paste. Each hands its files to `handleFiles` (app.js decides what they are).

import { ui } from "./view.js";

export function wireInputs(handleFiles) {
  ui.fileInput.addEventListener("change", () => {
    const files = [...ui.fileInput.files];
    ui.fileInput.value = ""; // choosing the same file again still fires change
    handleFiles(files);
  });

  ui.dropZone.addEventListener("click", (e) => {
    if (e.target !== ui.fileInput) ui.fileInput.click();
  });
  ui.dropZone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      ui.fileInput.click();
    }
  });
  ui.chooseAnother.addEventListener("click", () => ui.fileInput.click());

  // A file dropped anywhere on the page (the photo, the results) is taken as input instead of the browser
  // navigating away to it.
  let dragDepth = 0;
  window.addEventListener("dragenter", (e) => {
    if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
    dragDepth++;
    document.body.classList.add("dragging");
  });
  window.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) document.body.classList.remove("dragging");
  });
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    dragDepth = 0;
    document.body.classList.remove("dragging");
    handleFiles(e.dataTransfer?.files);
  });

  document.addEventListener("paste", (e) => {
    const items = [...(e.clipboardData?.items || [])];
    const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/")) ||
      items.find((i) => i.kind === "file");
    const file = item?.getAsFile();
    if (!file) return;
    e.preventDefault();
    handleFiles([file]);
  });
}
