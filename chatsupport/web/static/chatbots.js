/* Chatbot console pages: the embed code's Copy button (clipboard API, else the text is selected for Ctrl+C) and a
   confirmation before forms marked data-confirm (rollback). No inline handlers: the CSP forbids them. */
(function () {
  'use strict';

  function copy(button) {
    var box = document.getElementById(button.getAttribute('data-copy'));
    var status = document.getElementById('copy-status');
    function selected(message) {
      box.focus();
      box.select();
      if (status) status.textContent = message;
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(box.value).then(function () {
        if (status) status.textContent = 'Copied to the clipboard.';
      }, function () { selected('Selected: press Ctrl+C (⌘C on a Mac) to copy.'); });
    } else {
      var done = false;
      box.select();
      try { done = document.execCommand('copy'); } catch (e) { done = false; }
      selected(done ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (⌘C on a Mac) to copy.');
    }
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-copy]');
    if (button) copy(button);
  });
  document.addEventListener('submit', function (event) {
    var message = event.target.getAttribute('data-confirm');
    if (message && !window.confirm(message)) event.preventDefault();
  });
}());
