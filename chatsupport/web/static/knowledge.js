/* Knowledge page: drag-and-drop upload of several files at once, each with its own progress bar.
   Files go to the API upload route by XHR (fetch cannot report upload progress); when one finishes, the
   documents table is told to refresh itself ("kb-changed"), and htmx polling then shows processing live. */
(function () {
  "use strict";

  function item(list, file) {
    var li = document.createElement("li");
    li.className = "upload-item";
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    var state = document.createElement("span");
    state.className = "upload-state";
    state.textContent = "Waiting…";
    li.append(name, bar, state);
    list.prepend(li);
    return { li: li, bar: bar, state: state };
  }

  function message(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      return (body.error && body.error.message) || "Upload failed.";
    } catch (e) {
      return xhr.status === 413 ? "The file is too large." : "Upload failed (" + xhr.status + ").";
    }
  }

  function send(form, file, row) {
    var data = new FormData();
    data.append("chatbot_id", form.dataset.chatbot);
    data.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        row.bar.value = Math.round((event.loaded / event.total) * 100);
        row.state.textContent = row.bar.value + "%";
      }
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 201) {
        row.bar.value = 100;
        row.state.textContent = "Uploaded — processing";
        row.li.classList.add("upload-ok");
      } else {
        row.state.textContent = message(xhr);
        row.li.classList.add("upload-error");
      }
      document.body.dispatchEvent(new CustomEvent("kb-changed"));
    });
    xhr.addEventListener("error", function () {
      row.state.textContent = "Network error: the upload did not finish.";
      row.li.classList.add("upload-error");
    });
    row.state.textContent = "0%";
    xhr.send(data);
  }

  function uploadAll(form, files) {
    var list = document.getElementById("upload-list");
    Array.prototype.forEach.call(files, function (file) {
      send(form, file, item(list, file));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (!form) {
      return;
    }
    var input = document.getElementById("upload-files");
    input.addEventListener("change", function () {
      uploadAll(form, input.files);
      input.value = "";
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      uploadAll(form, input.files);
    });
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (event) {
        event.preventDefault();
        form.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      form.addEventListener(name, function (event) {
        event.preventDefault();
        form.classList.remove("dragging");
      });
    });
    form.addEventListener("drop", function (event) {
      if (event.dataTransfer && event.dataTransfer.files.length) {
        uploadAll(form, event.dataTransfer.files);
      }
    });
  });
})();
