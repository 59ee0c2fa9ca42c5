// Staryer's pages work without this script; it only adds comforts. Hand-written, no
// build step, no dependencies.
//  - forms with `data-confirm` ask before they post (erase, revoke, cancel);
//  - buttons with `data-copy` copy the text of the element they name (snippets, links).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent.trim()).then(() => {
      button.textContent = "Copied";
    });
  }
});
