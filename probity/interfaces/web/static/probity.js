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

// Forms marked [data-busy]: on submit, the button is disabled and a progress line shows
// until the next page arrives, so a slow search shows that it runs and a second click
// sends nothing (the form's key would also make a resend the same search).
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-busy")) return;
  if (form.dataset.sent === "true") { e.preventDefault(); return; }
  form.dataset.sent = "true";
  for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) {
    button.disabled = true;
    button.setAttribute("aria-disabled", "true");
  }
  const busy = form.querySelector(".busy");
  if (busy) {
    const text = busy.querySelector("span");
    if (text) text.textContent = form.dataset.busy;
    busy.hidden = false;
  }
});
// Back-forward cache: a page shown again from history starts with a live button.
window.addEventListener("pageshow", (e) => {
  if (!e.persisted) return;
  for (const form of document.querySelectorAll("form[data-busy]")) {
    delete form.dataset.sent;
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    const busy = form.querySelector(".busy");
    if (busy) busy.hidden = true;
  }
});

// Compare view: zoom both images together in steps (classes, not inline styles: the
// Content-Security-Policy allows no inline style).
const ZOOMS = [1, 1.5, 2, 3, 4];
document.addEventListener("click", (e) => {
  const button = e.target instanceof Element ? e.target.closest("[data-zoom-step]") : null;
  if (!button) return;
  const bar = button.closest("[data-zoom-for]");
  const target = bar && document.getElementById(bar.dataset.zoomFor);
  if (!target) return;
  const step = Number(button.dataset.zoomStep);
  const now = Number(target.dataset.zoom || "0");
  const next = step === 0 ? 0 : Math.min(ZOOMS.length - 1, Math.max(0, now + step));
  target.dataset.zoom = String(next);
  for (const z of ZOOMS.keys()) target.classList.toggle(`zoom-${z}`, z === next);
  const level = bar.querySelector("[data-zoom-level]");
  if (level) level.textContent = `${Math.round(ZOOMS[next] * 100)} %`;
});
