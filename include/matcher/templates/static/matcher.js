// The Matcher pages inside Airflow's frame. Served from the page's own origin ('self' in its
// Content-Security-Policy): no inline script runs anywhere on these pages.
(function () {
  "use strict";
  var root = document.documentElement;

  // Airflow's window, when this page is shown inside it (same origin); null when opened on its own.
  function airflowWindow() {
    try {
      if (window.top !== window && window.top.document) return window.top;
    } catch (error) {}
    return null;
  }

  // Follow Airflow's colour mode: its UI marks <html> "light" or "dark" and keeps the choice in
  // localStorage "theme"; without either, the CSS follows the system's preference.
  function applyTheme() {
    var top = airflowWindow();
    var theme = null;
    if (top) {
      var classes = top.document.documentElement.classList;
      theme = classes.contains("dark") ? "dark" : classes.contains("light") ? "light" : null;
    }
    if (!theme) {
      try {
        var stored = window.localStorage.getItem("theme");
        if (stored === "dark" || stored === "light") theme = stored;
      } catch (error) {}
    }
    if (theme) root.setAttribute("data-theme", theme);
    else root.removeAttribute("data-theme");
  }
  applyTheme();
  var top = airflowWindow();
  if (top && window.MutationObserver) {
    new MutationObserver(applyTheme).observe(top.document.documentElement, { attributes: true });
  }
  window.addEventListener("storage", applyTheme);

  // Airflow's iframe sandbox forbids navigating the top window, so a link to one of Airflow's own
  // views (data-airflow) moves Airflow's router instead: the view opens in Airflow's window, as
  // its own links do. Opened on its own, the link is an ordinary one.
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-airflow]") : null;
    var top = airflowWindow();
    if (!link || !top || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin) return;
    event.preventDefault();
    var state = top.history.state || {};
    var next = { usr: null, key: Math.random().toString(36).slice(2, 10), idx: (state.idx || 0) + 1 };
    top.history.pushState(next, "", url.pathname + url.search + url.hash);
    top.dispatchEvent(new top.PopStateEvent("popstate", { state: next }));
  });

  // A search encodes the query with the model: say so while it runs (the first one may load it).
  document.addEventListener("submit", function (event) {
    var note = event.target.querySelector("[data-busy]");
    if (note) note.hidden = false;
  });
})();
