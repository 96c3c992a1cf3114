/* The live inbox: one EventSource on /console/events keeps the list, the open conversation and the bell current;
   keyboard shortcuts; the reply box (Enter sends, "/" picks a saved reply); @mentions in notes; desktop
   notifications and an optional beep. No framework: htmx does the swaps, this file only reacts to events.
   Everything shown comes from server-rendered fragments or is set with textContent, never innerHTML. */
(function () {
  "use strict";

  if (!document.getElementById("inbox") && !document.getElementById("notifications-page")) { return; }
  var SOUND_KEY = "chatsupport.inbox.sound";
  var ALERT_KINDS = { escalation: true, assignment: true, mention: true };
  var ROW_EVENTS = ["message:receive", "conversation:started", "conversation:status_changed",
    "conversation:escalated", "conversation:resolved", "agent:joined", "csat:received", "note:created",
    "conversation:assigned", "conversation:tags_updated"];

  function $(selector, root) { return (root || document).querySelector(selector); }
  function openId() { var pane = $("#conversation"); return pane ? pane.getAttribute("data-id") : null; }

  function announce(text) {
    var region = $("#live-status");
    if (!region) { return; }
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  // --- the list: kept live without losing rows loaded with "Load more" --------------------------------------
  // At most every 300 ms the first page (current filters) is fetched and merged into the list by row id: its rows
  // go on top in its order (a row is replaced only when its content changed, so focus survives), rows further
  // down stay where they are, and a changed row further down is patched alone through /inbox/rows/<id> (or
  // removed when it no longer passes the filters).
  var listTimer = null, changed = {};
  function listQuery() {
    var form = $("#filters");
    return form ? new URLSearchParams(new FormData(form)).toString() : "";
  }

  function fetchHtml(url) {
    return fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
  }

  function parseHtml(html) { return new DOMParser().parseFromString(html, "text/html"); }

  function adopt(node) {
    var copy = document.importNode(node, true);
    window.htmx.process(copy);
    return copy;
  }

  function refreshList(conversationId) {
    if (conversationId) { changed[conversationId] = true; }
    if (listTimer || !$("#conversation-list")) { return; }
    listTimer = window.setTimeout(function () {
      listTimer = null;
      var ids = Object.keys(changed), query = listQuery();
      changed = {};
      fetchHtml("/inbox/list?" + query)
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html && listQuery() === query) { mergeList(parseHtml(html), ids, query); }
        });
    }, 300);
  }

  function mergeList(fresh, ids, query) {
    var list = $("#conversation-list"), next = $("#conversation-list", fresh);
    if (!list || !next) { return; }
    var rowsNow = $("#rows"), rowsNext = $("#rows", fresh);
    if (!rowsNow || !rowsNext) {  // empty before or now: nothing loaded further down to keep
      list.replaceWith(adopt(next));
      afterSwap(document);
      return;
    }
    var tabs = $("nav.tabs", list), freshTabs = $("nav.tabs", next);
    if (tabs && freshTabs) { tabs.replaceWith(adopt(freshTabs)); }
    var onTop = {}, place = rowsNow.firstElementChild;
    Array.prototype.forEach.call(rowsNext.querySelectorAll(":scope > li.row"), function (row) {
      onTop[row.getAttribute("data-id")] = true;
      var current = document.getElementById(row.id), node = current;
      if (!current || current.innerHTML !== row.innerHTML) {
        node = adopt(row);
        if (current) {
          if (place === current) { place = current.nextElementSibling; }
          current.remove();
        }
      } else {
        current.classList.toggle("unread", row.classList.contains("unread"));
      }
      if (node === place) { place = place.nextElementSibling; } else { rowsNow.insertBefore(node, place); }
    });
    ids.forEach(function (id) {
      if (!onTop[id] && document.getElementById("row-" + id)) { patchRow(id, query); }
    });
    afterSwap(document);
  }

  function patchRow(id, query) {
    fetchHtml("/inbox/rows/" + encodeURIComponent(id) + "?" + query).then(function (response) {
      var row = document.getElementById("row-" + id);
      if (!row || listQuery() !== query) { return; }
      if (response.status === 204 || response.status === 404) { row.remove(); return; }
      if (!response.ok) { return; }
      return response.text().then(function (html) {
        var next = $("li.row", parseHtml(html)), current = document.getElementById("row-" + id);
        if (next && current) { current.replaceWith(adopt(next)); afterSwap(document); }
      });
    });
  }

  // "Load more" after live inserts may bring a row again: the one loaded last is the current one.
  function dedupeRows() {
    var seen = {};
    rows().reverse().forEach(function (row) {
      var id = row.getAttribute("data-id");
      if (seen[id]) { row.remove(); } else { seen[id] = true; }
    });
  }

  // --- the open conversation: timeline, header and side panel are replaced; the reply box keeps its draft ----
  var paneTimer = null;
  function refreshOpen(id) {
    if (paneTimer) { window.clearTimeout(paneTimer); }
    paneTimer = window.setTimeout(function () {
      paneTimer = null;
      fetch("/inbox/" + encodeURIComponent(id), { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html || openId() !== id) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html");
          ["#conv-header", "#timeline", ".customer-panel"].forEach(function (selector) {
            var now = $(selector), next = $(selector, fresh);
            if (now && next && !now.contains(document.activeElement)) {
              now.replaceWith(document.importNode(next, true));
            }
          });
          var conversation = $("#conversation");
          if (conversation) {
            conversation.setAttribute("data-status", $("#conversation", fresh).getAttribute("data-status"));
            window.htmx.process(conversation);
          }
          scrollTimeline();
        });
    }, 100);
  }

  function scrollTimeline() {
    var timeline = $("#timeline");
    if (timeline) { timeline.scrollTop = timeline.scrollHeight; }
  }

  var typingTimer = null;
  function showTyping(data, on) {
    var line = $("#typing");
    if (!line || data.conversation_id !== openId() || !data.sender || data.sender.type !== "customer") { return; }
    line.textContent = (data.sender.name || "The visitor") + " is typing…";
    line.hidden = !on;
    if (typingTimer) { window.clearTimeout(typingTimer); }
    if (on) { typingTimer = window.setTimeout(function () { line.hidden = true; }, 8000); }
  }

  // --- notifications: bell, desktop notification, beep ------------------------------------------------------
  function setCount(value) {
    var count = $("#bell-count");
    if (!count) { return; }
    count.textContent = value ? String(value) : "";
    count.setAttribute("data-count", String(value));
    var bell = $("#bell");
    if (bell) { bell.setAttribute("aria-label", value ? "Notifications, " + value + " unread" : "Notifications"); }
  }

  function beep() {
    if (localStorage.getItem(SOUND_KEY) !== "on" || !window.AudioContext) { return; }
    var audio = new window.AudioContext();
    var tone = audio.createOscillator(), gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
    tone.connect(gain); gain.connect(audio.destination);
    tone.start(); tone.stop(audio.currentTime + 0.4);
    tone.onended = function () { audio.close(); };
  }

  function desktop(title, body, conversationId) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) { return; }
    var note = new Notification(title, { body: body || "", tag: conversationId || undefined });
    note.onclick = function () {
      window.focus();
      if (conversationId) { window.location.href = "/inbox/" + encodeURIComponent(conversationId); }
    };
  }

  function onNotification(data) {
    var note = data.notification || {};
    setCount(data.unread_count || 0);
    if ($("#notification-list")) {
      window.htmx.ajax("GET", "/inbox/notifications", { target: "#notification-list", swap: "outerHTML" });
    }
    announce(note.title || "New notification");
    if (ALERT_KINDS[note.kind]) {
      desktop(note.title || "ChatSupport", note.body, note.conversation_id);
      beep();
    }
  }

  // --- the event stream ---------------------------------------------------------------------------------------
  function parse(event) { try { return JSON.parse(event.data); } catch (e) { return {}; } }

  function connect() {
    var source = new EventSource("/console/events");
    var opened = false;
    source.addEventListener("open", function () {
      if (opened) { refreshList(); }  // a reconnect may have missed events
      opened = true;
    });
    ROW_EVENTS.forEach(function (name) {
      source.addEventListener(name, function (event) {
        var data = parse(event);
        refreshList(data.conversation_id);
        if (data.conversation_id && data.conversation_id === openId()) {
          refreshOpen(data.conversation_id);
          if (name === "message:receive" && data.sender && data.sender.type === "customer") {
            announce("New message from " + (data.sender.name || "the visitor"));
          }
        }
      });
    });
    source.addEventListener("typing:start", function (event) { showTyping(parse(event), true); });
    source.addEventListener("typing:stop", function (event) { showTyping(parse(event), false); });
    source.addEventListener("notification:new", function (event) { onNotification(parse(event)); });
    source.addEventListener("notification:read", function (event) { setCount(parse(event).unread_count || 0); });
    source.addEventListener("conversation:read", function (event) {  // read in another tab of mine
      var row = document.getElementById("row-" + parse(event).conversation_id);
      if (row) { row.classList.remove("unread"); }
    });
    window.addEventListener("beforeunload", function () { source.close(); });
  }

  // --- keyboard -------------------------------------------------------------------------------------------------
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#rows > li.row")); }

  var selectedId = null;
  function select(row) {
    rows().forEach(function (r) { r.classList.toggle("selected", r === row); });
    if (row) {
      selectedId = row.getAttribute("data-id");
      var link = $(".row-link", row);
      link.focus();
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    var list = rows();
    if (!list.length) { return; }
    var index = list.findIndex(function (r) { return r.getAttribute("data-id") === selectedId; });
    select(list[Math.min(list.length - 1, Math.max(0, index < 0 ? 0 : index + step))]);
  }

  function click(selector) {
    var target = $(selector);
    if (target) { target.click(); }
    return !!target;
  }

  function shortcuts() {
    var dialog = $("#shortcuts");
    if (dialog && !dialog.open) { dialog.showModal(); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if ($("#shortcuts") && $("#shortcuts").open) { return; }  // the dialog closes itself on Esc
    var handled = true;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter": {
        var current = document.querySelector("#rows > li.selected .row-link");
        if (current && document.activeElement !== current) { current.click(); } else { handled = false; }
        break;
      }
      case "t": handled = click("#conv-actions [data-shortcut='t']"); break;
      case "e": {
        var resolve = $("#resolve");
        if (resolve) { resolve.open = true; $("#resolution-note").focus(); } else { handled = false; }
        break;
      }
      case "/": {
        var box = $("#reply-box");
        if (box) { box.focus(); } else { handled = false; }
        break;
      }
      case "?": shortcuts(); break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });

  // --- reply box: Enter sends; "/" at the start opens the saved replies ------------------------------------------
  function pickerFor(box, listSelector, match, insert) {
    var options = $(listSelector);
    if (!options) { return null; }
    var picker = document.createElement("ul");
    picker.className = "picker";
    picker.setAttribute("role", "listbox");
    picker.hidden = true;
    box.insertAdjacentElement("afterend", picker);
    var active = 0;

    function choices() { return Array.prototype.slice.call(picker.children); }
    function highlight() {
      choices().forEach(function (c, i) { c.setAttribute("aria-selected", i === active ? "true" : "false"); });
    }
    function render() {
      var found = match(box);
      picker.textContent = "";
      if (found === null) { picker.hidden = true; return; }
      Array.prototype.slice.call(options.children).filter(function (o) {
        return o.getAttribute("data-key").toLowerCase().indexOf(found.toLowerCase()) !== -1;
      }).slice(0, 8).forEach(function (option) {
        var item = document.createElement("li");
        item.setAttribute("role", "option");
        item.textContent = option.getAttribute("data-label");
        item.addEventListener("mousedown", function (e) { e.preventDefault(); insert(box, option); render(); });
        picker.appendChild(item);
      });
      active = 0;
      highlight();
      picker.hidden = !picker.children.length;
    }
    box.addEventListener("input", render);
    box.addEventListener("blur", function () { picker.hidden = true; });
    return {
      open: function () { return !picker.hidden; },
      key: function (event) {
        if (picker.hidden) { return false; }
        var list = choices();
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          active = (active + (event.key === "ArrowDown" ? 1 : list.length - 1)) % list.length;
          highlight();
        } else if (event.key === "Enter" || event.key === "Tab") {
          list[active].dispatchEvent(new MouseEvent("mousedown"));
        } else if (event.key === "Escape") {
          picker.hidden = true;
        } else { return false; }
        event.preventDefault();
        return true;
      }
    };
  }

  // The customer sees "… is typing": started at most every 3 s while keys are pressed, stopped after 4 s idle.
  function reportTyping(box) {
    var form = box.form, url = form.getAttribute("data-typing-url"), last = 0, idle = null;
    function send(on) {
      var body = new URLSearchParams({ csrf_token: form.elements.csrf_token.value, typing: on ? "1" : "0" });
      fetch(url, { method: "POST", body: body, credentials: "same-origin" });
    }
    box.addEventListener("input", function () {
      var now = Date.now();
      if (now - last > 3000) { last = now; send(true); }
      if (idle) { window.clearTimeout(idle); }
      idle = window.setTimeout(function () { last = 0; send(false); }, 4000);
    });
    form.addEventListener("submit", function () {
      if (idle) { window.clearTimeout(idle); idle = null; }
      last = 0;
    });
  }

  function setupReply(root) {
    var box = $("#reply-box", root);
    if (!box || box.getAttribute("data-ready")) { return; }
    box.setAttribute("data-ready", "1");
    var canned = pickerFor(box, "#canned-options",
      function (b) { return /^\/(\S*)$/.test(b.value) ? b.value.slice(1) : null; },
      function (b, option) { b.value = option.getAttribute("data-content"); b.focus(); });
    reportTyping(box);
    box.addEventListener("keydown", function (event) {
      if (canned && canned.key(event)) { return; }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (box.value.trim()) { box.form.requestSubmit(); }
      }
    });
  }

  function setupNote(root) {
    var box = $("#note-box", root);
    if (!box || box.getAttribute("data-ready")) { return; }
    box.setAttribute("data-ready", "1");
    function mention(b) {
      var before = b.value.slice(0, b.selectionStart);
      var found = /(^|\s)@([\w.-]*)$/.exec(before);
      return found ? found[2] : null;
    }
    var people = pickerFor(box, "#member-options", mention, function (b, option) {
      var caret = b.selectionStart, before = b.value.slice(0, caret);
      var start = before.lastIndexOf("@");
      var handle = option.getAttribute("data-mention") + " ";
      b.value = before.slice(0, start) + handle + b.value.slice(caret);
      b.selectionStart = b.selectionEnd = start + handle.length;
      b.focus();
    });
    box.addEventListener("keydown", function (event) { if (people) { people.key(event); } });
  }

  // --- after every swap: selection, read state, new widgets -----------------------------------------------------
  function afterSwap(root) {
    setupReply(root);
    setupNote(root);
    dedupeRows();
    var id = openId();
    rows().forEach(function (row) {
      var open = row.getAttribute("data-id") === id;
      if (open) { row.classList.remove("unread"); }
      row.classList.toggle("selected", row.getAttribute("data-id") === (selectedId || id));
    });
    var list = $("#conversation-list"), status = $("#f-status");
    if (list && status) { status.value = list.getAttribute("data-status") || ""; }
  }

  document.body.addEventListener("htmx:afterSwap", function (event) {
    afterSwap(event.target);
    if (event.target.id === "conversation-pane" || event.target.id === "conversation") { scrollTimeline(); }
  });
  document.body.addEventListener("htmx:afterSettle", function () { afterSwap(document); });

  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("#rows > li.row");
    if (row) { selectedId = row.getAttribute("data-id"); }
  });

  // --- settings buttons (permission is asked on a click, never on load) -----------------------------------------
  var sound = $("#sound-toggle");
  if (sound) {
    sound.checked = localStorage.getItem(SOUND_KEY) === "on";
    sound.addEventListener("change", function () {
      localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off");
      if (sound.checked) { beep(); }
    });
  }
  var enable = $("#enable-notifications");
  if (enable) {
    if (!("Notification" in window) || Notification.permission !== "default") { enable.hidden = true; }
    enable.addEventListener("click", function () {
      Notification.requestPermission().then(function () { enable.hidden = true; });
    });
  }
  var help = $("#shortcuts-button");
  if (help) { help.addEventListener("click", shortcuts); }

  afterSwap(document);
  scrollTimeline();
  connect();
}());
