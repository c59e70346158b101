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

  // <button data-copy="id" hidden>: copy the text of element #id. Shown only where it can work.
  if (navigator.clipboard) {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        if (source) navigator.clipboard.writeText(source.textContent);
      });
    });
  }
})();
