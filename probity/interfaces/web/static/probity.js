// Drag and drop for file inputs inside [data-dropzone] forms: a dropped file fills the input
// (the form still submits normally, so this is an aid, not a requirement).
document.addEventListener("DOMContentLoaded", () => {
  for (const zone of document.querySelectorAll(".dropzone")) {
    const input = zone.querySelector("input[type=file]");
    if (!input) continue;
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) input.files = e.dataTransfer.files;
    });
  }
});

// After htmx swaps in a face's candidates, mark that face as picked on the photo and in the
// list (the server renders the same marks on a full page load).
document.addEventListener("htmx:afterSwap", () => {
  const panel = document.getElementById("face-panel");
  if (!panel) return;
  const picked = panel.dataset.face;
  for (const box of document.querySelectorAll(".probe g.face")) {
    box.classList.toggle("picked", box.dataset.face === picked);
  }
  for (const link of document.querySelectorAll(".face-picker a[data-face]")) {
    if (link.dataset.face === picked) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
});
