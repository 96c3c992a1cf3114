/*! ChatSupport chat frame. AGPL-3.0-or-later. Runs inside the iframe the loader adds (docs/widget-protocol.md):
 * holds the WebSocket (or the HTTP + server-sent-events fallback), renders the conversation and talks to the host
 * page by postMessage. Every piece of text from people or the bot goes into the DOM through textContent; the small
 * markdown renderer builds nodes and only ever links http(s). Plain ES2018, no build step, no dependencies. */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('cs-config').textContent);
  var bot = cfg.chatbot || {};
  var limits = cfg.limits || {};
  var token = cfg.token;
  var convId = cfg.conversation_id || null;
  var status = null;
  var agent = null;
  var isOpen = false;
  var live = !convId;
  var unread = 0;
  var lastId = null;
  var page = {};
  var shown = {};            // message_id -> bubble
  var pending = {};          // client_id -> {data, bubble}
  var outbox = [];           // other visitor frames waiting for a connection or a conversation
  var told = {};           // notices already shown for the current state (events may arrive twice)
  var startFrame = null;   // the frame that is creating the conversation, until answered
  var attachments = [];
  var ws = null;
  var failures = 0;
  var fallback = false;
  var events = null;
  var retryTimer = 0;
  var pingTimer = 0;
  var typingTimer = 0;
  var $ = function (id) { return document.getElementById(id); };

  // ---- DOM helpers -------------------------------------------------------------------------------------------
  function h(tag, attrs, kids) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'text') node.textContent = v;
      else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    });
    (kids || []).forEach(function (kid) { if (kid) node.appendChild(kid); });
    return node;
  }
  function safeUrl(url) {
    try {
      var u = new URL(url, location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) { return null; }
  }
  function link(url, text) {
    var href = safeUrl(url);
    if (!href) return document.createTextNode(text);
    return h('a', { href: href, target: '_blank', rel: 'noopener noreferrer', text: text });
  }
  function icon(d) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', 'cs-icon');
    var path = svg.appendChild(document.createElementNS(ns, 'path'));
    path.setAttribute('d', d);
    return svg;
  }
  var CLIP = 'M16.5 6.5 8.4 14.6a1.8 1.8 0 0 0 2.5 2.5l8-8.1a3.6 3.6 0 0 0-5-5.1L5.8 12a5.4 5.4 0 0 0 7.6 7.6l6.1-6.1';
  var UP = 'M7 11v9H4v-9h3zm3 9h7.2a2 2 0 0 0 2-1.6l1.2-6A2 2 0 0 0 18.4 10H14V5.5A2.5 2.5 0 0 0 11.5 3L10 11v9z';
  var DOWN = 'M17 13V4h3v9h-3zm-3-9H6.8a2 2 0 0 0-2 1.6l-1.2 6A2 2 0 0 0 5.6 14H10v4.5a2.5 2.5 0 0 0 2.5 2.5L14 13V4z';
  function randomId(prefix) {
    var b = crypto.getRandomValues(new Uint8Array(12));
    return prefix + Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  // ---- Markdown subset: paragraphs, lists, **bold**, *italics*, [links](http…) and bare http(s) URLs ---------
  var INLINE = new RegExp([
    '\\[([^\\]]+)\\]\\(((?:[^()\\s]|\\([^()\\s]*\\))+)\\)',
    '\\*\\*([^*]+)\\*\\*', '__([^_]+)__',
    '\\*([^*\\s][^*]*)\\*', '(?<!\\w)_([^_\\s][^_]*)_(?!\\w)',
    '(https?://[^\\s<>]*[^\\s<>.,;:!?)\\]\'"])'
  ].join('|'), 'g');

  function inline(text, parent) {
    var at = 0;
    var m;
    var re = new RegExp(INLINE.source, 'g');
    while ((m = re.exec(text))) {
      if (m.index > at) parent.appendChild(document.createTextNode(text.slice(at, m.index)));
      if (m[1]) parent.appendChild(link(m[2], m[1]));
      else if (m[3] || m[4]) inline(m[3] || m[4], parent.appendChild(h('strong')));
      else if (m[5] || m[6]) inline(m[5] || m[6], parent.appendChild(h('em')));
      else parent.appendChild(link(m[7], m[7]));
      at = re.lastIndex;
    }
    if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
    return parent;
  }

  function markdown(src) {
    var out = document.createDocumentFragment();
    var block = null;
    var kind = null;
    String(src || '').split(/\r?\n/).forEach(function (line) {
      var item = /^\s*([-*+]|\d{1,3}[.)])\s+(.*)$/.exec(line);
      if (!line.trim()) { block = kind = null; return; }
      if (item) {
        var type = /\d/.test(item[1]) ? 'ol' : 'ul';
        if (kind !== type) { block = out.appendChild(h(type)); kind = type; }
        inline(item[2], block.appendChild(h('li')));
        return;
      }
      if (kind !== 'p') { block = out.appendChild(h('p')); kind = 'p'; } else block.appendChild(h('br'));
      inline(line, block);
    });
    return out;
  }

  // ---- Layout ------------------------------------------------------------------------------------------------
  var app = $('cs-app');
  var avatar = h('img', { class: 'cs-avatar', alt: '', hidden: true, onerror: function () { avatar.hidden = true; } });
  var title = h('h1', { class: 'cs-title' });
  var subtitle = h('p', { class: 'cs-subtitle' });
  var closeBtn = h('button', { type: 'button', class: 'cs-close', 'aria-label': 'Close chat', text: '\u00d7',
                               onclick: function () { requestClose(); } });
  var disclosure = h('span', { class: 'cs-disclosure-text' });
  var humanBtn = h('button', { type: 'button', class: 'cs-human', text: 'Talk to a person', onclick: askHuman });
  var log = h('div', { class: 'cs-log', id: 'cs-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation',
                       tabindex: '0' });
  var greeting = h('div', { class: 'cs-msg cs-bot cs-greeting' });
  var typing = h('p', { class: 'cs-typing', hidden: true, 'aria-live': 'polite' });
  var panelArea = h('div', { class: 'cs-panel' });
  var notice = h('p', { class: 'cs-notice', role: 'status', 'aria-live': 'polite' });
  var fileInput = h('input', { type: 'file', id: 'cs-file', class: 'cs-file',
                               accept: (limits.attachment_types || []).join(','), onchange: upload });
  var attachLabel = h('label', { for: 'cs-file', class: 'cs-attach', title: 'Attach a file' },
                      [icon(CLIP), h('span', { class: 'cs-sr', text: 'Attach a file' })]);
  var chips = h('div', { class: 'cs-chips' });
  var input = h('textarea', { id: 'cs-input', rows: '1', 'aria-label': 'Message', placeholder: 'Type your message…',
                              maxlength: String(limits.max_message_length || 4000), onkeydown: onKey,
                              oninput: onTyping });
  var composer = h('form', { class: 'cs-composer', onsubmit: function (e) { e.preventDefault(); send(); } },
                   [fileInput, attachLabel, input, h('button', { type: 'submit', class: 'cs-send', text: 'Send' })]);
  var source = h('a', { target: '_blank', rel: 'noopener noreferrer', text: 'Source' });
  app.appendChild(h('header', { class: 'cs-header' }, [avatar, h('div', { class: 'cs-heading' }, [title, subtitle]),
                                                          closeBtn]));
  app.appendChild(h('div', { class: 'cs-disclosure' }, [disclosure, humanBtn]));
  log.appendChild(greeting);
  app.appendChild(log);
  app.appendChild(typing);
  app.appendChild(notice);
  app.appendChild(panelArea);
  app.appendChild(chips);
  app.appendChild(composer);
  app.appendChild(h('footer', { class: 'cs-footer' }, [document.createTextNode('Powered by ChatSupport · '), source]));

  function contrast(hex) {
    var c = (hex || '#ffffff').replace('#', '');
    if (c.length === 3) c = c.replace(/./g, '$&$&');
    var n = parseInt(c, 16);
    var lum = (0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255;
    return lum > 0.55 ? '#111827' : '#F9FAFB';
  }
  function applyConfig() {
    var ws = bot.widget_settings || {};
    var theme = ws.theme || {};
    var root = document.documentElement.style;
    var colours = { primary: theme.primary_color || '#3B82F6', secondary: theme.secondary_color || '#1E40AF',
                    'on-primary': theme.text_color || '#FFFFFF', bg: theme.background_color || '#FFFFFF' };
    colours.fg = contrast(colours.bg);
    Object.keys(colours).forEach(function (k) {
      if (/^#[0-9a-fA-F]{3,6}$/.test(colours[k])) root.setProperty('--cs-' + k, colours[k]);
    });
    document.documentElement.setAttribute('data-size', ws.size || 'medium');
    var av = ws.avatar_url && safeUrl(ws.avatar_url);
    avatar.hidden = !av;
    if (av) avatar.src = av;
    title.textContent = bot.name || 'Chat';
    greeting.replaceChildren(markdown(bot.greeting_message || 'Hi! How can I help you today?'));
    var src = safeUrl(cfg.source_url || '/source');
    if (src) source.href = src;
    showWho();
    toHost({ type: 'chatsupport:config', widget_settings: ws });
  }
  function showWho() {
    var human = agent && status === 'agent_handling';
    var who = human && (agent.name || 'a team member');
    subtitle.textContent = human ? who : 'AI assistant';
    disclosure.textContent = human ? 'You are chatting with ' + who + '.'
                                   : 'You are chatting with an AI assistant.';
    humanBtn.hidden = human || status === 'escalated';
  }

  // ---- Host page ---------------------------------------------------------------------------------------------
  function toHost(msg) {
    if (window.parent !== window && cfg.host_origin) window.parent.postMessage(msg, cfg.host_origin);
  }
  function requestClose() {
    isOpen = false;
    toHost({ type: 'chatsupport:close' });
  }
  function setUnread(n) {
    unread = n;
    toHost({ type: 'chatsupport:unread', count: n });
  }
  function focusFirst() {
    var target = panelArea.querySelector('input, textarea, button') || input;
    if (!composer.hidden || target !== input) target.focus();
  }
  window.addEventListener('message', function (event) {
    if (event.origin !== cfg.host_origin || event.source !== window.parent) return;
    var d = event.data || {};
    if (d.type === 'chatsupport:open') { isOpen = true; setUnread(0); focusFirst(); }
    else if (d.type === 'chatsupport:close') isOpen = false;
    else if (d.type === 'chatsupport:page') page = { page_url: String(d.page_url || ''), referrer: String(d.referrer || '') };
    else if (d.type === 'chatsupport:identify') {
      queueSend('visitor:identify', { user_id: d.user_id, email: d.email, name: d.name, signature: d.signature });
    } else if (d.type === 'chatsupport:metadata') queueSend('visitor:metadata', { metadata: d.metadata || {} });
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') { e.preventDefault(); requestClose(); }
  });

  // ---- Messages ----------------------------------------------------------------------------------------------
  function scroll() { log.scrollTop = log.scrollHeight; }
  function line(text, cls) {
    var p = h('p', { class: 'cs-line ' + (cls || ''), text: text });
    log.appendChild(p);
    scroll();
    return p;
  }
  function say(text) { notice.textContent = text; }

  function bubble(sender) {
    var type = (sender && sender.type) || 'bot';
    var el = h('div', { class: 'cs-msg cs-' + type });
    if (type === 'agent' && sender.name) el.appendChild(h('span', { class: 'cs-from', text: sender.name }));
    el.appendChild(h('div', { class: 'cs-body' }));
    log.appendChild(el);
    return el;
  }
  function fill(el, data) {
    var type = (data.sender && data.sender.type) || 'bot';
    var body = el.querySelector('.cs-body');
    body.replaceChildren(type === 'customer' ? h('p', { text: data.content || '' }) : markdown(data.content));
    (data.attachments || []).forEach(function (a) {
      body.appendChild(h('p', { class: 'cs-file-link' }, [link(a.url, a.filename + ' (' + kb(a.size) + ')')]));
    });
    var old = el.querySelector('.cs-sources');
    if (old) old.remove();
    var sources = (data.sources || []).filter(function (s) { return s && (s.title || s.url); });
    if (sources.length) {
      var list = h('ul');
      sources.forEach(function (s) { list.appendChild(h('li', {}, [link(s.url || '', s.title || s.url)])); });
      el.appendChild(h('div', { class: 'cs-sources' }, [h('span', { text: 'Sources:' }), list]));
    }
    if (type === 'bot' && data.message_id && !el.querySelector('.cs-feedback')) el.appendChild(thumbs(data.message_id));
  }
  function kb(n) { return n > 1048576 ? (n / 1048576).toFixed(1) + ' MB' : Math.ceil((n || 0) / 1024) + ' KB'; }

  function thumbs(id) {
    var box = h('div', { class: 'cs-feedback', role: 'group', 'aria-label': 'Was this answer helpful?' });
    [[true, UP, 'Helpful'], [false, DOWN, 'Not helpful']].forEach(function (t) {
      box.appendChild(h('button', { type: 'button', 'aria-label': t[2], 'aria-pressed': 'false', title: t[2],
        onclick: function (e) {
          box.querySelectorAll('button').forEach(function (b) { b.setAttribute('aria-pressed', 'false'); });
          e.currentTarget.setAttribute('aria-pressed', 'true');
          queueSend('message:feedback', { message_id: id, helpful: t[0] });
        } }, [icon(t[1])]));
    });
    return box;
  }

  function receive(d) {
    if (d.conversation_id && convId && d.conversation_id !== convId) return;
    var mine = d.client_id && pending[d.client_id];
    if (!mine && !shown[d.message_id] && d.sender && d.sender.type === 'customer') {
      var cid = Object.keys(pending).filter(function (k) { return pending[k].data.content === d.content; })[0];
      if (cid) { mine = pending[cid]; d.client_id = cid; }
    }
    var el = shown[d.message_id] || (mine && mine.bubble);
    var isNew = !el;  // a streamed answer was counted when its first piece arrived
    if (!el) el = bubble(d.sender);
    if (mine) delete pending[d.client_id];
    el.classList.remove('cs-streaming', 'cs-pending');
    el.removeAttribute('aria-busy');
    shown[d.message_id] = el;
    fill(el, d);
    lastId = d.message_id;
    if (d.sender && d.sender.type !== 'customer') {
      typing.hidden = true;
      if (isNew && live && !isOpen) setUnread(unread + 1);
    }
    scroll();
  }

  function streaming(d) {
    var el = shown[d.message_id];
    if (el && !el.classList.contains('cs-streaming')) return;
    if (!el) {
      el = shown[d.message_id] = bubble({ type: 'bot' });
      el.classList.add('cs-streaming');
      el.setAttribute('aria-busy', 'true');
      el.text = '';
      if (live && !isOpen) setUnread(unread + 1);
    }
    typing.hidden = true;
    el.text = (d.reset ? '' : el.text) + (d.chunk || '');
    el.querySelector('.cs-body').replaceChildren(markdown(el.text));
    scroll();
  }

  // ---- Sending -----------------------------------------------------------------------------------------------
  function onKey(e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  }
  function onTyping() {
    if (!convId) return;
    if (!typingTimer) queueSend('typing:start', { conversation_id: convId });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  }
  function stopTyping() {
    if (typingTimer && convId) queueSend('typing:stop', { conversation_id: convId });
    clearTimeout(typingTimer);
    typingTimer = 0;
  }
  function send() {
    var content = input.value.trim();
    if (!content && !attachments.length) return;
    var max = limits.max_message_length || 4000;
    if (content.length > max) { say('That message is too long: please keep it under ' + max + ' characters.'); return; }
    stopTyping();
    var clientId = randomId('c_');
    var el = bubble({ type: 'customer' });
    el.classList.add('cs-pending');
    var data = { client_id: clientId, conversation_id: convId, content: content,
                 attachments: attachments.map(function (a) { return a.id; }) };
    fill(el, { content: content, sender: { type: 'customer' }, attachments: attachments });
    pending[clientId] = { data: data, bubble: el };
    input.value = '';
    attachments = [];
    chips.replaceChildren();
    say('');
    scroll();
    sendOne(clientId);
  }
  // A frame that creates the conversation (conversation:start, or the first message:send) goes alone: everything
  // else waits for its answer, so two quick messages never open two conversations. It is re-sent on reconnect.
  function sendOne(clientId) {
    var p = pending[clientId];
    if (!p || startFrame) return;
    p.data.conversation_id = convId;
    if (!convId) p.data.metadata = pageMeta();
    var sent = transmit('message:send', p.data);
    if (!convId) { startFrame = ['message:send', p.data]; startFrame.sent = sent; }
  }
  function queueSend(event, data) {
    if (startFrame || !transmit(event, data)) outbox.push([event, data]);
  }
  function flush() {
    if (startFrame) { startFrame.resent = startFrame.sent; startFrame.sent = transmit(startFrame[0], startFrame[1]); return; }
    var waiting = outbox;
    outbox = [];
    waiting.forEach(function (f) { queueSend(f[0], f[1]); });
    Object.keys(pending).forEach(sendOne);
  }
  function started(id) {
    convId = id;
    // Sent twice (the connection dropped): what was said while no socket listened comes back through resume.
    if (startFrame && startFrame.resent && !fallback) outbox.push(['resume', { conversation_id: id, last_message_id: lastId }]);
    startFrame = null;
    live = true;
    if (fallback) listen();
    flush();
  }
  function askHuman() {
    if (!convId) { say('Send us a message first, then we can bring in a person.'); input.focus(); return; }
    humanBtn.disabled = true;
    queueSend('conversation:request_human', { conversation_id: convId });
  }
  function pageMeta() {
    return Object.assign({ user_agent: navigator.userAgent, locale: navigator.language }, page);
  }
  function start(fields, extra) {
    startFrame = ['conversation:start', Object.assign({ fields: fields, metadata: pageMeta() }, extra || {})];
    startFrame.sent = transmit(startFrame[0], startFrame[1]);
  }

  // ---- Forms: pre-chat, offline, satisfaction ----------------------------------------------------------------
  var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  function field(name, label, type, required) {
    var id = 'cs-f-' + name;
    var control = type === 'textarea' ? h('textarea', { id: id, name: name, rows: '3' })
      : h('input', { id: id, name: name, type: type === 'phone' ? 'tel' : type === 'number' ? 'text' : type,
                     inputmode: type === 'number' ? 'decimal' : null,
                     autocomplete: { name: 'name', email: 'email' }[name] || (type === 'phone' ? 'tel' : 'off') });
    if (required) control.setAttribute('aria-required', 'true');
    var err = h('span', { class: 'cs-error', id: id + '-err' });
    control.setAttribute('aria-describedby', err.id);
    control.check = function () {
      var v = control.value.trim();
      var msg = !v ? (required ? label + ' is required.' : '')
        : type === 'email' && !EMAIL.test(v) ? 'Please enter a valid email address.'
        : type === 'phone' && !/^\+?[\d\s().-]{5,20}$/.test(v) ? 'Please enter a valid phone number.'
        : type === 'number' && !isFinite(Number(v)) ? label + ' must be a number.' : '';
      err.textContent = msg;
      if (msg) control.setAttribute('aria-invalid', 'true'); else control.removeAttribute('aria-invalid');
      return !msg;
    };
    return h('div', { class: 'cs-field' }, [h('label', { for: id, text: label + (required ? ' *' : '') }), control,
                                             err]);
  }
  function form(heading, intro, fields, submitText, onValid) {
    var f = h('form', { class: 'cs-form', novalidate: true, 'aria-label': heading });
    f.appendChild(h('h2', { text: heading }));
    if (intro) f.appendChild(h('p', { text: intro }));
    fields.forEach(function (x) { f.appendChild(x); });
    f.appendChild(h('button', { type: 'submit', class: 'cs-primary', text: submitText }));
    f.addEventListener('submit', function (e) {
      e.preventDefault();
      var controls = Array.prototype.slice.call(f.querySelectorAll('input, textarea'));
      var bad = controls.filter(function (c) { return !c.check(); });
      if (bad.length) { bad[0].focus(); return; }
      var values = {};
      controls.forEach(function (c) { if (c.value.trim()) values[c.name] = c.value.trim(); });
      onValid(values);
    });
    showPanel(f);
    return f;
  }
  function showPanel(node) {
    panelArea.replaceChildren();
    if (node) panelArea.appendChild(node);
    composer.hidden = !!node && !node.classList.contains('cs-csat');
    if (node && isOpen) focusFirst();
  }

  function prechatFields() {
    var dc = bot.data_collection || {};
    var list = [];
    if (dc.collect_name) list.push(field('name', 'Name', 'text', true));
    if (dc.collect_email) list.push(field('email', 'Email', 'email', true));
    (dc.custom_fields || []).forEach(function (c) { list.push(field(c.name, c.label, c.type || 'text', !!c.required)); });
    return list;
  }
  function showPrechat() {
    var fields = prechatFields();
    if (!fields.length) return;
    form('Before we start', 'Please tell us a little about yourself.', fields, 'Start chat', function (values) {
      showPanel(null);
      start(values);
      input.focus();
    });
  }
  function showOffline() {
    form('Leave us a message', bot.offline_message || "We're currently offline. Leave a message!",
         [field('name', 'Name', 'text', true), field('email', 'Email', 'email', true),
          field('message', 'Message', 'textarea', true)], 'Send message', function (values) {
      showPanel(null);
      start({ name: values.name, email: values.email }, { offline: true, message: values.message });
      say("Thanks! We've got your message and will reply by email.");
    });
  }
  function showCsat(survey) {
    var rating = 0;
    var box = h('form', { class: 'cs-form cs-csat', 'aria-label': 'Rate this conversation' });
    box.appendChild(h('h2', { text: (survey && survey.question) || 'How would you rate this conversation?' }));
    var stars = h('div', { class: 'cs-stars', role: 'group', 'aria-label': 'Rating' });
    var submit = h('button', { type: 'submit', class: 'cs-primary', text: 'Send rating', disabled: true });
    for (var i = 1; i <= ((survey && survey.scale) || 5); i++) {
      stars.appendChild(h('button', { type: 'button', 'aria-pressed': 'false', 'data-n': String(i), text: '\u2605',
        'aria-label': i + (i > 1 ? ' stars' : ' star'), onclick: function (e) {
          rating = Number(e.currentTarget.getAttribute('data-n'));
          stars.querySelectorAll('button').forEach(function (b) {
            var n = Number(b.getAttribute('data-n'));
            b.setAttribute('aria-pressed', String(n === rating));
            b.classList.toggle('cs-on', n <= rating);
          });
          submit.disabled = false;
        } }));
    }
    box.appendChild(stars);
    var comment = h('textarea', { id: 'cs-csat-comment', rows: '2' });
    box.appendChild(h('label', { for: comment.id, text: 'Comment (optional)' }));
    box.appendChild(comment);
    box.appendChild(submit);
    box.addEventListener('submit', function (e) {
      e.preventDefault();
      if (!rating) return;
      var data = { conversation_id: convId, rating: rating };
      if (comment.value.trim()) data.comment = comment.value.trim();
      queueSend('csat:submit', data);
      submit.disabled = true;
    });
    showPanel(box);
  }

  // ---- Attachments -------------------------------------------------------------------------------------------
  function upload() {
    var file = fileInput.files[0];
    fileInput.value = '';
    if (!file) return;
    var types = limits.attachment_types || [];
    var max = limits.max_attachment_bytes || 10485760;
    if (types.indexOf(file.type) < 0 || file.size > max) {
      say('Sorry, only images (PNG, JPEG, GIF, WebP) and PDF files up to ' + Math.round(max / 1048576) +
          ' MB can be attached.');
      return;
    }
    var body = new FormData();
    body.append('file', file);
    say('Uploading ' + file.name + '…');
    api('/attachments', body).then(function (a) {
      attachments.push(a);
      say('');
      var chip = h('span', { class: 'cs-chip', text: a.filename });
      chip.appendChild(h('button', { type: 'button', 'aria-label': 'Remove ' + a.filename, text: '\u00d7',
        onclick: function () { attachments = attachments.filter(function (x) { return x !== a; }); chip.remove(); } }));
      chips.appendChild(chip);
    }).catch(function (err) { say(err.friendly || 'That file could not be uploaded. Please try again.'); });
  }

  // ---- Server events -----------------------------------------------------------------------------------------
  var ERRORS = {
    message_too_long: 'That message is too long. Please shorten it and send it again.',
    conversation_closed: 'This conversation is closed. Send a new message to start again.',
    invalid_signature: "We couldn't confirm who you are, so you are chatting as a guest.",
    not_found: "We couldn't find that conversation.",
    bad_request: 'Something went wrong. Please try again.',
    too_many_connections: 'We are very busy right now. Retrying shortly…'
  };
  function friendly(d) {
    if (d.code === 'rate_limited') {
      var s = Math.max(1, Math.ceil(d.retry_after || 60));
      return "You're sending messages too quickly. Please wait " + s + ' second' + (s > 1 ? 's' : '') +
             ' and try again.';
    }
    return ERRORS[d.code] || d.message || 'Something went wrong. Please try again.';
  }
  var HANDLERS = {
    'conversation:started': function (d) {
      status = d.status;
      convId = d.conversation_id;
      (d.messages || []).forEach(receive);
      showWho();
      started(d.conversation_id);
    },
    'message:ack': function (d) {
      var p = pending[d.client_id];
      if (p) {
        delete pending[d.client_id];
        p.bubble.classList.remove('cs-pending');
        if (!shown[d.message_id]) shown[d.message_id] = p.bubble;
        else if (shown[d.message_id] !== p.bubble) p.bubble.remove();
      }
      if (startFrame && startFrame[1].client_id === d.client_id) started(d.conversation_id);
    },
    'message:receive': receive,
    'message:streaming': streaming,
    'typing:start': function (d) {
      if (bot.show_typing_indicator === false) return;
      var who = (d.sender && d.sender.name) || (d.sender && d.sender.type === 'agent' ? 'An agent' : bot.name);
      typing.textContent = who + ' is typing…';
      typing.hidden = false;
    },
    'typing:stop': function () { typing.hidden = true; },
    'conversation:escalated': function (d) {
      if (told.escalated) return;  // the direct answer and the channel may both bring it
      told.escalated = true;
      status = 'escalated';
      humanBtn.disabled = false;
      showWho();
      var wait = d.estimated_wait_time;
      var text = d.message || (d.business_open === false ? "Our team is offline right now; we'll reply as soon as we're back."
                                                         : 'We are connecting you with a person.');
      if (wait && d.business_open !== false) text += ' Expected wait: about ' + Math.max(1, Math.round(wait / 60)) + ' min.';
      line(text, 'cs-system');
    },
    'agent:joined': function (d) {
      if (told.agent && agent && d.agent && agent.id === d.agent.id) return;
      told.agent = true;
      agent = d.agent || {};
      status = 'agent_handling';
      showWho();
      line("You're now chatting with " + (agent.name || 'a team member'), 'cs-system');
      if (live && !isOpen) setUnread(unread + 1);
    },
    'conversation:status_changed': function (d) {
      var was = status;
      status = d.new_status;
      // Notices are shown once per stay in a state; leaving it re-arms them.
      if (status !== 'resolved') told.resolved = false;
      if (status !== 'agent_handling') told.agent = false;
      if (status !== 'escalated' && status !== 'agent_handling') told.escalated = false;
      if (was === 'agent_handling' && status === 'active') line("You're back with the AI assistant.", 'cs-system');
      showWho();
    },
    'conversation:resolved': function (d) {
      if (told.resolved) return;  // once per resolution, however many times the event arrives
      told.resolved = true;
      status = 'resolved';
      showWho();
      line('This conversation has been marked as resolved.', 'cs-system');
      showCsat(d.survey);
    },
    'csat:received': function () {
      if (!panelArea.querySelector('.cs-csat')) return;
      showPanel(null);
      line('Thank you for your feedback!', 'cs-system');
    },
    'feedback:received': function () { say('Thanks for the feedback.'); },
    'config:updated': function (d) { bot = d.chatbot || bot; applyConfig(); },
    'resume:done': function (d) {
      status = d.status;
      if (d.agent) agent = d.agent;
      live = true;
      showWho();
      if (status === 'resolved' && !panelArea.firstChild) showPanel(null);
    },
    'visitor:identified': function (d) {
      if (d.token) { token = d.token; cfg.token_expires_at = d.token_expires_at; }
      if (!d.conversation_id || d.conversation_id === convId) return;
      // The signed-in user's own conversation (perhaps from another device) replaces this browser's.
      Array.prototype.slice.call(log.children, 1).forEach(function (n) { n.remove(); });
      shown = {};
      lastId = null;
      convId = d.conversation_id;
      showPanel(null);
      if (fallback) listen(); else queueSend('resume', { conversation_id: convId, last_message_id: null });
    },
    'pong': function () {},
    'error': function (d) {
      var p = d.client_id && pending[d.client_id];
      if (p) {
        delete pending[d.client_id];
        p.bubble.classList.remove('cs-pending');
        p.bubble.classList.add('cs-failed');
        p.bubble.appendChild(h('span', { class: 'cs-status', text: 'Not sent' }));
      }
      if (startFrame && (!d.client_id || startFrame[1].client_id === d.client_id)) { startFrame = null; flush(); }
      humanBtn.disabled = false;
      line(friendly(d), 'cs-error-line');
    }
  };
  function dispatch(event, data) {
    var fn = HANDLERS[event];
    if (fn) fn(data || {});
  }

  // ---- Transport: WebSocket, else POST + server-sent events ---------------------------------------------------
  function transmit(event, data) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify({ event: event, data: data })); return true; }
    if (!fallback) return false;
    api('/messages', JSON.stringify({ event: event, data: data })).then(function (r) {
      (r.events || []).forEach(function (e) { dispatch(e.event, e.data); });
    }).catch(function (err) {
      if (err.body && err.body.events) err.body.events.forEach(function (e) { dispatch(e.event, e.data); });
      else if (event === 'conversation:start' || (event === 'message:send' && pending[data.client_id])) {
        setTimeout(function () { transmit(event, data); }, backoff());
      }
    });
    return true;
  }
  function api(path, body) {
    var headers = { Authorization: 'Bearer ' + token };
    if (typeof body === 'string') headers['Content-Type'] = 'application/json';
    return fetch(cfg.api_base + path, { method: 'POST', headers: headers, body: body }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (json) {
        if (r.ok) return json;
        var err = new Error('HTTP ' + r.status);
        err.body = json;
        err.friendly = json && json.error ? friendly(json.error) : json && json.message;
        throw err;
      });
    });
  }
  // Capped at 4 s: after a server restart every widget is back within a few seconds, spread over 2-4 s.
  function backoff() {
    var base = Math.min(4000, 500 * Math.pow(2, Math.min(failures, 6)));
    return base / 2 + Math.random() * base / 2;
  }
  // A socket counts as working once the server has answered on it (the ping sent on open gets a pong): a proxy
  // that accepts WebSockets and then kills them is as blocked as one that refuses them.
  function connect() {
    clearTimeout(retryTimer);
    var healthy = false;
    var sock = ws = new WebSocket(cfg.ws_url + '?token=' + encodeURIComponent(token));
    sock.onopen = function () {
      sock.send('{"event":"ping","data":{}}');
      clearInterval(pingTimer);
      pingTimer = setInterval(function () { if (sock.readyState === 1) sock.send('{"event":"ping","data":{}}'); }, 25000);
      if (convId) sock.send(JSON.stringify({ event: 'resume', data: { conversation_id: convId, last_message_id: lastId } }));
      flush();
    };
    sock.onmessage = function (e) {
      if (!healthy) { healthy = everOpened = true; failures = 0; }
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      dispatch(msg.event, msg.data);
    };
    sock.onclose = function (e) {
      if (sock !== ws) return;
      clearInterval(pingTimer);
      ws = null;
      if (e.code === 4403) { say('This chat is not available on this website.'); return; }
      if (e.code === 4401) { refresh().then(connect, function () { say('Your chat session expired. Please reload the page.'); }); return; }
      if (!healthy) failures++;
      if (e.code === 4429 || (!everOpened && failures >= 2)) { useFallback(); return; }
      retryTimer = setTimeout(connect, backoff());
      failures += healthy ? 1 : 0;
    };
  }
  var everOpened = false;

  function useFallback() {
    fallback = true;
    failures = 0;
    listen();
    flush();
  }
  function listen() {
    if (events) events.close();
    events = null;
    if (!convId) return;
    var q = new URLSearchParams({ token: token, conversation_id: convId });
    if (lastId) q.set('last_message_id', lastId);
    var src = events = new EventSource(cfg.api_base + '/events?' + q.toString());
    Object.keys(HANDLERS).forEach(function (name) {
      src.addEventListener(name, function (e) {
        var data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        dispatch(name, data);
      });
    });
    src.onopen = function () { failures = 0; };
    src.onerror = function () {
      if (src !== events) return;
      src.close();
      failures++;
      retryTimer = setTimeout(listen, backoff());
    };
  }

  function refresh() {
    return api('/token', null).then(function (r) {
      token = r.token;
      cfg.token_expires_at = r.token_expires_at;
      scheduleRefresh();
    });
  }
  function scheduleRefresh() {
    var at = Date.parse(cfg.token_expires_at || '') || Date.now() + 3600000;
    setTimeout(function () {
      refresh().catch(function () { setTimeout(scheduleRefresh, 30000); });
    }, Math.max(5000, at - Date.now() - 120000));
  }

  // ---- Start -------------------------------------------------------------------------------------------------
  applyConfig();
  if (!convId) {
    if (bot.business_open === false) showOffline(); else showPrechat();
  }
  toHost({ type: 'chatsupport:ready' });
  scheduleRefresh();
  connect();
})();
