/*! ChatSupport widget loader. AGPL-3.0-or-later; source: see the "Source" link in the chat frame.
 * Pasted on a customer's site as <script async src="https://APPLIANCE/widget.js" data-chatbot="KEY">.
 * Adds the launcher and, on first open, the chat frame; talks to the frame only by postMessage
 * (docs/widget-protocol.md). Everything lives in one shadow root with inline styles, so neither the host page's
 * CSS nor its style-src CSP touches us and we touch nothing of theirs. Plain ES2018, no dependencies. */
(function () {
  'use strict';
  if (window.ChatSupport && window.ChatSupport.version) return;
  var script = document.currentScript || document.querySelector('script[data-chatbot]');
  var key = script && script.getAttribute('data-chatbot');
  if (!key) return;
  var appOrigin = new URL(script.src, location.href).origin;
  var Z = '2147483000';
  var MOBILE = window.matchMedia('(max-width: 479px)');
  var SIZES = { small: [320, 460], medium: [370, 560], large: [420, 640] };

  function load(name) {
    try { return localStorage.getItem('chatsupport:' + name + ':' + key); } catch (e) { return null; }
  }
  function save(name, value) {
    try { localStorage.setItem('chatsupport:' + name + ':' + key, value); } catch (e) { /* private mode */ }
  }
  function randomId() {
    var abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    var bytes = crypto.getRandomValues(new Uint8Array(22));
    var out = 'v_';
    for (var i = 0; i < bytes.length; i++) out += abc[bytes[i] & 63];
    return out;
  }
  var visitor = load('visitor');
  if (!/^v_[A-Za-z0-9_-]{22}$/.test(visitor || '')) { visitor = randomId(); save('visitor', visitor); }

  var settings = { position: 'bottom-right', button_text: 'Chat with us', size: 'medium',
                   theme: { primary_color: '#3B82F6', text_color: '#FFFFFF' } };
  try { merge(JSON.parse(load('config') || '{}')); } catch (e) { /* ignore a damaged cache */ }
  function merge(ws) {
    if (!ws || typeof ws !== 'object') return;
    ['position', 'button_text', 'size'].forEach(function (k) { if (typeof ws[k] === 'string') settings[k] = ws[k]; });
    if (ws.theme) {
      ['primary_color', 'text_color'].forEach(function (k) {
        if (/^#[0-9a-fA-F]{3,6}$/.test(ws.theme[k] || '')) settings.theme[k] = ws.theme[k];
      });
    }
  }

  function el(tag, style, parent) {
    var node = document.createElement(tag);
    Object.assign(node.style, style);
    if (parent) parent.appendChild(node);
    return node;
  }
  var host = el('div', { all: 'initial', position: 'static' });
  host.setAttribute('data-chatsupport', '');
  var root = host.attachShadow({ mode: 'open' });
  var font = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  var launcher = el('button', {
    position: 'fixed', bottom: '20px', zIndex: Z, display: 'flex', alignItems: 'center', gap: '8px',
    margin: '0', padding: '12px 18px', border: '0', borderRadius: '999px', cursor: 'pointer', font: '600 15px/1.2 ' + font,
    boxShadow: '0 4px 14px rgba(0,0,0,.25)', maxWidth: 'calc(100vw - 40px)'
  }, root);
  launcher.type = 'button';
  launcher.setAttribute('aria-expanded', 'false');
  launcher.setAttribute('aria-haspopup', 'dialog');
  var NS = 'http://www.w3.org/2000/svg';
  var icon = document.createElementNS(NS, 'svg');
  icon.setAttribute('viewBox', '0 0 24 24');
  icon.setAttribute('width', '20');
  icon.setAttribute('height', '20');
  icon.setAttribute('aria-hidden', 'true');
  var path = document.createElementNS(NS, 'path');
  path.setAttribute('d', 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z');
  path.setAttribute('fill', 'currentColor');
  icon.appendChild(path);
  launcher.appendChild(icon);
  var label = el('span', {}, launcher);
  var badge = el('span', {
    display: 'none', minWidth: '20px', height: '20px', padding: '0 6px', boxSizing: 'border-box', borderRadius: '10px',
    background: '#DC2626', color: '#FFFFFF', font: '700 12px/20px ' + font, textAlign: 'center'
  }, launcher);
  badge.setAttribute('aria-hidden', 'true');
  var unreadText = el('span', { display: 'none' }, root);
  unreadText.id = 'cs-unread';
  launcher.setAttribute('aria-describedby', 'cs-unread');

  var panel = el('div', {
    position: 'fixed', zIndex: Z, display: 'none', overflow: 'hidden', background: '#FFFFFF',
    boxShadow: '0 8px 30px rgba(0,0,0,.3)'
  }, root);
  var frame = null;
  var ready = false;
  var queue = [];
  var isOpen = false;

  function style() {
    var side = settings.position === 'bottom-left' ? 'left' : 'right';
    var other = side === 'left' ? 'right' : 'left';
    var size = SIZES[settings.size] || SIZES.medium;
    label.textContent = settings.button_text;
    launcher.style.background = settings.theme.primary_color;
    launcher.style.color = settings.theme.text_color;
    launcher.style[side] = '20px';
    launcher.style[other] = 'auto';
    launcher.style.display = isOpen && MOBILE.matches ? 'none' : 'flex';
    var full = MOBILE.matches;
    Object.assign(panel.style, {
      top: full ? '0' : 'auto', bottom: full ? '0' : '90px', borderRadius: full ? '0' : '12px',
      width: full ? '100%' : size[0] + 'px', height: full ? '100%' : size[1] + 'px',
      maxWidth: '100vw', maxHeight: full ? '100%' : 'calc(100vh - 110px)'
    });
    panel.style[side] = full ? '0' : '20px';
    panel.style[other] = full ? '0' : 'auto';
  }

  function post(msg) {
    if (ready && frame && frame.contentWindow) frame.contentWindow.postMessage(msg, appOrigin);
    else queue.push(msg);
  }

  function createFrame() {
    var q = new URLSearchParams({ key: key, visitor: visitor, origin: location.origin });
    frame = el('iframe', { display: 'block', width: '100%', height: '100%', border: '0' }, panel);
    frame.title = 'Chat window';
    frame.setAttribute('referrerpolicy', 'origin');
    frame.src = appOrigin + '/widget/frame?' + q.toString();
    save('active', '1');
  }

  function open() {
    if (!frame) createFrame();
    isOpen = true;
    panel.style.display = 'block';
    launcher.setAttribute('aria-expanded', 'true');
    style();
    post({ type: 'chatsupport:open' });
    frame.focus();
  }

  function close(fromFrame) {
    if (!isOpen) return;
    isOpen = false;
    panel.style.display = 'none';
    launcher.setAttribute('aria-expanded', 'false');
    style();
    if (!fromFrame) post({ type: 'chatsupport:close' });
    launcher.focus();
  }

  function setUnread(count) {
    count = Math.max(0, Math.min(99, count | 0));
    badge.textContent = String(count);
    badge.style.display = count ? 'inline-block' : 'none';
    unreadText.textContent = count ? count + ' unread message' + (count > 1 ? 's' : '') : '';
  }

  window.addEventListener('message', function (event) {
    if (!frame || event.origin !== appOrigin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.type === 'chatsupport:ready') {
      ready = true;
      post({ type: 'chatsupport:page', page_url: location.href, referrer: document.referrer });
      post({ type: isOpen ? 'chatsupport:open' : 'chatsupport:close' });
      var pending = queue;
      queue = [];
      pending.forEach(post);
    } else if (data.type === 'chatsupport:close') {
      close(true);
    } else if (data.type === 'chatsupport:unread') {
      setUnread(data.count);
    } else if (data.type === 'chatsupport:config') {
      merge(data.widget_settings);
      save('config', JSON.stringify(data.widget_settings || {}));
      style();
    }
  });

  launcher.addEventListener('click', function () { if (isOpen) close(); else open(); });
  panel.addEventListener('keydown', function (e) { if (e.key === 'Escape') close(); });
  if (MOBILE.addEventListener) MOBILE.addEventListener('change', style);

  window.ChatSupport = {
    version: 1,
    open: open,
    close: function () { close(); },
    identify: function (user) { post({ type: 'chatsupport:identify', user_id: user.user_id, email: user.email,
                                       name: user.name, signature: user.signature }); },
    setMetadata: function (metadata) { post({ type: 'chatsupport:metadata', metadata: metadata || {} }); }
  };

  function mount() {
    style();
    document.body.appendChild(host);
    // A visitor who has chatted before gets the frame loaded (hidden), so agent replies light the badge.
    if (load('active')) createFrame();
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
