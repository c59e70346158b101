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
