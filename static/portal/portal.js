// Everything the portal's pages do in the browser. The Content-Security-Policy forbids inline
// script and on*= attributes, so templates only mark elements with data- attributes and this
// file (loaded with defer, after the document is parsed) attaches the behaviour. Every page also
// works without it: this only adds conveniences.
(function () {
  "use strict";

  // <form data-autosubmit>: submit as soon as a field changes (the tenant switcher), and hide
  // the [data-autosubmit-button] that submits it without JavaScript.
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.querySelectorAll("[data-autosubmit-button]").forEach(function (button) {
      button.hidden = true;
    });
    form.addEventListener("change", function () {
      if (form.requestSubmit) form.requestSubmit();
      else form.submit();
    });
  });

  // <form data-confirm="question">: ask before doing something that cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // <span data-exact="ISO time">: the exact time, written by the server in its own zone, is
  // rewritten in the reader's zone (with the zone's name), so "in 3 days" sits beside a time
  // the reader can put in a calendar.
  if (window.Intl && Intl.DateTimeFormat) {
    var local = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short"
    });
    document.querySelectorAll("[data-exact]").forEach(function (node) {
      var when = new Date(node.dataset.exact);
      if (!isNaN(when.getTime())) node.textContent = local.format(when);
    });
  }

  // <button data-menu-toggle aria-controls="id" hidden>: on a narrow screen the menu folds away
  // under this button (portal.css); without JavaScript it stays unfolded and simply wraps.
  document.querySelectorAll("button[data-menu-toggle]").forEach(function (button) {
    var menu = document.getElementById(button.getAttribute("aria-controls"));
    if (!menu) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var open = menu.classList.toggle("open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });

  // A form came back with errors: start from its summary (keyboard and screen reader users
  // land on what to fix, not at the top of the page). Each of its links goes to a field; for a
  // group of checkboxes or radios the target is their container, so focus the first input.
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.tabIndex = -1;
    summary.focus();
  }
  document.querySelectorAll(".error-summary a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function () {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      var input = target && target.matches("input, select, textarea") ? target
        : target && target.querySelector("input, select, textarea");
      if (input) window.setTimeout(function () { input.focus(); }, 0);
    });
  });

  // <div class="table-wrap">: a table wider than the screen scrolls inside it. Keyboard users
  // must be able to scroll it too, so a wrap that scrolls is focusable and named after its
  // section's heading; one that fits stays out of the tab order.
  function tableWraps() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth) {
        var section = wrap.closest("section");
        var heading = section && section.querySelector("h1, h2, h3");
        wrap.tabIndex = 0;
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", (heading ? heading.textContent.trim() : "Table") + " (scrolls sideways)");
      } else {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }
  tableWraps();
  window.addEventListener("resize", tableWraps);

  // One polite live region per page tells screen readers what a Copy button did.
  var announcer = document.createElement("div");
  announcer.className = "sr-only";
  announcer.setAttribute("aria-live", "polite");
  document.body.appendChild(announcer);
  function announce(text) {
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  // Select the text of `source` (so "Press Ctrl+C" has something to copy).
  function select(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // navigator.clipboard exists on https and localhost only: elsewhere (a plain-http host)
  // copy through a temporary textarea and the older execCommand.
  function legacyCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    var focused = document.activeElement;
    document.body.appendChild(area);
    area.focus();
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    if (focused) focused.focus();
    return ok;
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; },
        function () { return legacyCopy(text); });
    }
    return Promise.resolve(legacyCopy(text));
  }

  // <button data-copy="id" hidden>: copy the text of element #id, say so on the button for two
  // seconds and to screen readers; if the browser refuses, select the text and say how.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var label = button.textContent;
    var timer = null;
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      if (!source) return;
      copy(source.textContent.trim()).then(function (ok) {
        var said = ok ? "Copied" : "Press Ctrl+C to copy";
        if (!ok) select(source);
        button.textContent = said;
        announce(ok ? "Copied to the clipboard" : "Selected: press Ctrl+C to copy");
        window.clearTimeout(timer);
        timer = window.setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });

  // <details data-fold-narrow>: folded on a narrow screen, unless it holds applied filters
  // ([data-active]); open everywhere without JavaScript.
  if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
    document.querySelectorAll("details[data-fold-narrow]:not([data-active])").forEach(function (box) {
      box.open = false;
    });
  }

  // <input data-grants="password …"> in a form with a grant_type choice: the field (its
  // .field box) shows only while one of those grants is picked. The server ignores such a
  // field under another grant, so hiding it loses nothing that would have been saved.
  document.querySelectorAll("form").forEach(function (form) {
    var choices = form.querySelectorAll("[name=grant_type]");
    var dependents = form.querySelectorAll("[data-grants]");
    if (!choices.length || !dependents.length) return;
    function picked() {
      var value = "";
      choices.forEach(function (c) {
        if (c.type !== "radio" || c.checked) value = c.value;
      });
      return value;
    }
    function update() {
      var grant = picked();
      dependents.forEach(function (input) {
        var box = input.closest(".field") || input;
        box.hidden = input.dataset.grants.split(" ").indexOf(grant) === -1;
      });
    }
    choices.forEach(function (c) { c.addEventListener("change", update); });
    update();
  });
})();
