/* Alexia website chat widget. Plain JS, no framework, no cookies.
 *
 * Embed: <script src="https://<alexia>/static/widget.js" data-channel="<channel token>" async></script>
 * Signed-in users (identity verification): set before the tag
 *   window.alexiaSettings = {user_id: "42", user_hash: "<hex HMAC-SHA256(identity_secret, user_id)>",
 *                            name: "Ana", email: "ana@example.com"};
 * or put data-user-id / data-user-hash on the tag. Without them the visitor is anonymous; their token
 * is kept in localStorage so the conversation survives page loads.
 *
 * Live: a websocket (/ws/widget/<token>/) receives agent replies, typing and presence; when it cannot
 * connect, the widget polls GET messages/ every few seconds. Sending, typing and receipts are HTTP.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__alexiaChat) return;
  var channel = script.getAttribute("data-channel");
  if (!channel) return;
  var origin = new URL(script.src, location.href).origin;
  var api = origin + "/webchat/" + encodeURIComponent(channel) + "/";
  var wsUrl = origin.replace(/^http/, "ws") + "/ws/widget/" + encodeURIComponent(channel) + "/";
  var storeKey = "alexia.webchat." + channel;
  var given = window.alexiaSettings || {};
  var identity = {
    user_id: given.user_id || script.getAttribute("data-user-id") || "",
    user_hash: given.user_hash || script.getAttribute("data-user-hash") || "",
    name: given.name || "",
    email: given.email || ""
  };

  var S = {
    config: null, token: "", visitor: null, missing: [], online: false, open: false,
    ws: null, live: false, retry: 0, pollTimer: null, lastId: 0, seen: {}, pending: {},
    unread: [], typingSentAt: 0, typingStop: null, agentTypingTimer: null
  };
  var ui = {};
  window.__alexiaChat = { state: S };

  function stored() { try { return localStorage.getItem(storeKey) || ""; } catch (e) { return ""; } }
  function store(v) { try { localStorage.setItem(storeKey, v); } catch (e) { /* private mode */ } }

  function call(method, path, body) {
    var headers = {};
    if (S.token) headers["X-Visitor-Token"] = S.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(api + path, {
      method: method, headers: headers, credentials: "omit", mode: "cors",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 204) return {};
      return r.json().then(function (data) {
        if (!r.ok) { var err = new Error((data.error && data.error.message) || r.statusText); err.status = r.status; throw err; }
        return data;
      });
    });
  }

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text) n.textContent = text;
    return n;
  }

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px}",
    ".bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;",
    "background:#2563eb;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}",
    ".bubble svg{width:26px;height:26px;fill:#fff}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#dc2626;",
    "color:#fff;font-size:12px;line-height:20px;padding:0 6px}",
    ".panel{position:fixed;right:20px;bottom:88px;width:340px;max-width:calc(100vw - 40px);height:480px;",
    "max-height:calc(100vh - 120px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);",
    "display:flex;flex-direction:column;overflow:hidden;z-index:2147483000;color:#111827}",
    ".panel[hidden],[hidden]{display:none!important}",
    ".head{background:#2563eb;color:#fff;padding:12px 14px}",
    ".head b{display:block;font-size:15px}.head span{font-size:12px;opacity:.9}",
    ".dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:6px;background:#9ca3af}",
    ".dot.on{background:#22c55e}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f9fafb}",
    ".msg{max-width:80%;padding:8px 10px;border-radius:10px;margin:4px 0;white-space:pre-wrap;word-wrap:break-word}",
    ".msg.in{margin-left:auto;background:#2563eb;color:#fff}.msg.out{background:#e5e7eb}",
    ".msg.pending{opacity:.6}.msg.failed{background:#fecaca;color:#7f1d1d}",
    ".note{font-size:12px;color:#4b5563;padding:8px 12px;background:#fef3c7}",
    ".typing{font-size:12px;color:#6b7280;padding:2px 12px 6px;background:#f9fafb}",
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}",
    "form.pre,form.mail{flex-direction:column}",
    "input,textarea{flex:1;border:1px solid #d1d5db;border-radius:8px;padding:8px;resize:none;color:#111827;background:#fff}",
    "button.send{border:0;border-radius:8px;background:#2563eb;color:#fff;padding:0 14px;cursor:pointer}",
    "form.pre button,form.mail button{padding:8px}"
  ].join("");

  function build() {
    var host = el("div");
    host.id = "alexia-chat";
    var root = host.attachShadow({ mode: "open" });
    var style = el("style"); style.textContent = CSS; root.appendChild(style);

    ui.bubble = el("button", "bubble");
    ui.bubble.setAttribute("aria-label", "Open chat");
    ui.bubble.innerHTML = '<svg viewBox="0 0 24 24"><path d="M4 4h16v12H7l-3 3z"/></svg>';
    ui.badge = el("span", "badge"); ui.badge.hidden = true; ui.bubble.appendChild(ui.badge);
    ui.bubble.addEventListener("click", function () { toggle(!S.open); });

    ui.panel = el("div", "panel"); ui.panel.hidden = true;
    ui.panel.setAttribute("role", "dialog");
    var head = el("div", "head");
    head.appendChild(el("b", "", S.config.name));
    ui.status = el("span"); head.appendChild(ui.status);
    ui.panel.appendChild(head);

    ui.offline = el("div", "note", S.config.offline_message); ui.offline.hidden = true;
    ui.panel.appendChild(ui.offline);
    ui.log = el("div", "log"); ui.log.setAttribute("aria-live", "polite");
    ui.log.appendChild(el("div", "msg out greeting", S.config.greeting));
    ui.panel.appendChild(ui.log);
    ui.typing = el("div", "typing"); ui.typing.hidden = true; ui.panel.appendChild(ui.typing);

    ui.pre = el("form", "pre"); ui.pre.hidden = true;
    var f = S.config.pre_chat_form;
    ui.preName = el("input"); ui.preName.name = "name"; ui.preName.placeholder = "Your name";
    ui.preName.required = f.name === "required"; ui.preName.hidden = f.name === "hidden";
    ui.preEmail = el("input"); ui.preEmail.name = "email"; ui.preEmail.type = "email"; ui.preEmail.placeholder = "Your e-mail";
    ui.preEmail.required = f.email === "required"; ui.preEmail.hidden = f.email === "hidden";
    var start = el("button", "send", "Start chat"); start.type = "submit";
    ui.pre.appendChild(el("div", "", "Before we start, tell us who you are:"));
    ui.pre.appendChild(ui.preName); ui.pre.appendChild(ui.preEmail); ui.pre.appendChild(start);
    ui.pre.addEventListener("submit", function (ev) {
      ev.preventDefault();
      session({ name: ui.preName.value, email: ui.preEmail.value }).then(showForms, showError);
    });
    ui.panel.appendChild(ui.pre);

    ui.mail = el("form", "mail"); ui.mail.hidden = true;
    ui.mailInput = el("input"); ui.mailInput.type = "email"; ui.mailInput.required = true;
    ui.mailInput.placeholder = "Your e-mail, so we can answer you";
    var keep = el("button", "send", "Save e-mail"); keep.type = "submit";
    ui.mail.appendChild(ui.mailInput); ui.mail.appendChild(keep);
    ui.mail.addEventListener("submit", function (ev) {
      ev.preventDefault();
      session({ email: ui.mailInput.value }).then(showForms, showError);
    });
    ui.panel.appendChild(ui.mail);

    ui.form = el("form", "composer"); ui.form.hidden = true;
    ui.input = el("textarea"); ui.input.rows = 1; ui.input.placeholder = "Write a message…";
    ui.input.setAttribute("aria-label", "Message");
    var send = el("button", "send", "Send"); send.type = "submit";
    ui.form.appendChild(ui.input); ui.form.appendChild(send);
    ui.form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
    ui.input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); submit(); }
    });
    ui.input.addEventListener("input", typed);
    ui.panel.appendChild(ui.form);

    root.appendChild(ui.panel);
    root.appendChild(ui.bubble);
    document.body.appendChild(host);
    document.addEventListener("visibilitychange", markRead);
  }

  function setOnline(on) {
    S.online = !!on;
    ui.status.textContent = "";
    var dot = el("i", "dot" + (S.online ? " on" : ""));
    ui.status.appendChild(dot);
    ui.status.appendChild(document.createTextNode(S.online ? "We are online" : "We are away"));
    ui.offline.hidden = S.online;
    showForms();
  }

  function showForms() {
    if (!ui.form) return;
    var needPre = S.config.pre_chat_form.enabled && S.missing.length > 0;
    ui.pre.hidden = !needPre;
    ui.form.hidden = needPre;
    var email = S.visitor && S.visitor.email;
    ui.mail.hidden = needPre || S.online || !!email || S.config.pre_chat_form.email === "hidden";
  }

  function showError(err) {
    var n = el("div", "note", err.message || "Something went wrong.");
    ui.log.appendChild(n); scroll();
  }

  function session(extra) {
    var body = { visitor_token: S.token || stored() };
    ["user_id", "user_hash", "name", "email"].forEach(function (k) { if (identity[k]) body[k] = identity[k]; });
    Object.keys(extra || {}).forEach(function (k) { if (extra[k]) body[k] = extra[k]; });
    return call("POST", "session/", body).then(function (data) {
      S.token = data.visitor_token; store(S.token);
      S.visitor = data.visitor; S.missing = data.pre_chat_missing || [];
      setOnline(data.agents_online);
      return data;
    });
  }

  function scroll() { ui.log.scrollTop = ui.log.scrollHeight; }

  function render(m) {
    if (m.id && S.seen[m.id]) return false;
    if (m.id) { S.seen[m.id] = true; if (m.id > S.lastId) S.lastId = m.id; }
    if (m.direction === "in" && m.client_id && S.pending[m.client_id]) {
      var node = S.pending[m.client_id];
      node.setAttribute("data-id", m.id);
      delete S.pending[m.client_id];
      return false;
    }
    var n = el("div", "msg " + (m.direction === "in" ? "in" : "out"), m.text || "");
    if (m.id) n.setAttribute("data-id", m.id);
    (m.attachments || []).forEach(function (a) {
      if (!a.url) return;
      var link = el("a", "", a.filename || "attachment"); link.href = a.url; link.target = "_blank"; link.rel = "noopener";
      n.appendChild(document.createElement("br")); n.appendChild(link);
    });
    ui.log.appendChild(n); scroll();
    if (m.direction === "out") { S.unread.push(m.id); agentTyping(false); return true; }
    return false;
  }

  function receive(list) {
    var fresh = [];
    list.forEach(function (m) { if (render(m)) fresh.push(m.id); });
    if (!fresh.length) return;
    if (S.open && document.visibilityState === "visible") markRead();
    else {
      call("POST", "receipts/", { status: "delivered", message_ids: fresh }).catch(function () {});
      ui.badge.textContent = String(S.unread.length); ui.badge.hidden = false;
    }
  }

  function markRead() {
    if (!S.open || document.visibilityState !== "visible" || !S.unread.length) return;
    var ids = S.unread.splice(0);
    ui.badge.hidden = true;
    call("POST", "receipts/", { status: "read", message_ids: ids }).catch(function () { S.unread = ids.concat(S.unread); });
  }

  function history() {
    if (!S.token) return Promise.resolve();
    return call("GET", "messages/?after=" + S.lastId).then(function (data) {
      receive(data.messages || []);
      if (!S.live || !data.agent_typing) agentTyping(!!data.agent_typing, data.agent_name);
      if (data.agents_online !== S.online) setOnline(data.agents_online);
    });
  }

  function agentTyping(on, name) {
    clearTimeout(S.agentTypingTimer);
    ui.typing.hidden = !on;
    if (on) {
      ui.typing.textContent = (name || "An agent") + " is typing…";
      S.agentTypingTimer = setTimeout(function () { ui.typing.hidden = true; }, 8000);
    }
  }

  function uid() {
    var a = new Uint8Array(12); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function submit() {
    var text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    stopTyping();
    var clientId = uid();
    var n = el("div", "msg in pending", text);
    S.pending[clientId] = n; ui.log.appendChild(n); scroll();
    post(clientId, text, n, 0);
  }

  function post(clientId, text, node, attempt) {
    call("POST", "messages/", { client_id: clientId, text: text, page_url: location.href }).then(function () {
      node.classList.remove("pending");  // stored by the intake: it will be in the history
      if (!S.live) schedulePoll(800);
    }, function (err) {
      // A network error or 5xx may have stored it: retry with the same client id (stored once).
      if ((!err.status || err.status >= 500 || err.status === 429) && attempt < 5) {
        setTimeout(function () { post(clientId, text, node, attempt + 1); }, 1000 * Math.pow(2, attempt));
      } else {
        node.classList.remove("pending"); node.classList.add("failed");
        node.title = err.message || "Not sent";
      }
    });
  }

  function typed() {
    var now = Date.now();
    if (now - S.typingSentAt > 3000) {
      S.typingSentAt = now;
      call("POST", "typing/", { typing: true }).catch(function () {});
    }
    clearTimeout(S.typingStop);
    S.typingStop = setTimeout(stopTyping, 4000);
  }

  function stopTyping() {
    clearTimeout(S.typingStop);
    if (!S.typingSentAt) return;
    S.typingSentAt = 0;
    call("POST", "typing/", { typing: false }).catch(function () {});
  }

  function schedulePoll(delay) {
    clearTimeout(S.pollTimer);
    if (S.live) return;
    S.pollTimer = setTimeout(function () {
      history().catch(function () {}).then(function () { schedulePoll(S.open ? 3000 : 10000); });
    }, delay);
  }

  function connect() {
    if (!window.WebSocket || S.ws) return;
    var ws;
    try { ws = new WebSocket(wsUrl); } catch (e) { schedulePoll(0); return; }
    S.ws = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ type: "hello", visitor_token: S.token })); };
    ws.onmessage = function (ev) {
      var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "ready") {
        S.live = true; S.retry = 0; clearTimeout(S.pollTimer);
        ui.panel.setAttribute("data-live", "1");
        setOnline(msg.data.agents_online);
        history().catch(function () {});
      } else if (msg.type === "message.created") {
        receive([msg.data]);
      } else if (msg.type === "conversation.typing" && msg.data.by === "agent") {
        agentTyping(msg.data.typing, msg.data.name);
      } else if (msg.type === "pong") {
        if (msg.data.agents_online !== S.online) setOnline(msg.data.agents_online);
      }
    };
    ws.onclose = function () {
      S.ws = null; S.live = false; ui.panel.removeAttribute("data-live");
      schedulePoll(0);
      S.retry = Math.min(S.retry + 1, 6);
      setTimeout(connect, 1000 * Math.pow(2, S.retry - 1));
    };
  }

  setInterval(function () {
    if (S.ws && S.live) S.ws.send(JSON.stringify({ type: "ping" }));
  }, 30000);

  function startLive() { connect(); if (!S.live) schedulePoll(window.WebSocket ? 4000 : 0); }

  function toggle(open) {
    S.open = open;
    ui.panel.hidden = !open;
    ui.bubble.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    if (!open) return;
    var ready = S.token ? Promise.resolve() : session().then(startLive);
    ready.then(function () { showForms(); return history(); }).then(markRead, showError);
    ui.input.focus();
  }

  function init() {
    call("GET", "config/").then(function (config) {
      if (!config.enabled) return;
      S.config = config;
      build();
      setOnline(config.agents_online);
      if (stored() || identity.user_id) session().then(startLive, function () {});
    }).catch(function () { /* the site keeps working without the chat */ });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
