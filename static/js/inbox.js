/* Alexia agent inbox: partial updates over our own HTML fragments, live events over /ws/inbox/,
   keyboard shortcuts. No framework, no build step. The server renders every piece of markup; this
   script only fetches fragments, puts them in place and posts forms. */
(() => {
  "use strict";

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const inbox = $("#inbox");
  const dashboard = $("#dashboard");

  // --- small helpers ------------------------------------------------------------------------------
  function cookie(name) {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return hit ? decodeURIComponent(hit.split("=")[1]) : "";
  }
  const csrf = () => ($('meta[name="csrf-token"]') || {}).content || cookie("csrftoken");

  function randomKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function getHTML(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!r.ok) throw Object.assign(new Error(`Request failed (${r.status})`), { status: r.status });
    return r.text();
  }

  async function post(url, data, headers = {}) {
    // Plain fields go url-encoded (an empty multipart body is not valid multipart); files need FormData.
    let body = data;
    if (!(data instanceof FormData)) {
      body = new URLSearchParams();
      for (const [k, v] of Object.entries(data || {})) {
        if (Array.isArray(v)) v.forEach((item) => body.append(k, item));
        else body.append(k, v);
      }
    }
    const r = await fetch(url, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "X-Requested-With": "fetch", ...headers },
    });
    if (!r.ok) {
      let message = `Request failed (${r.status})`;
      try { const j = await r.json(); message = (j.error && j.error.message) || message; } catch (e) { /* not JSON */ }
      throw Object.assign(new Error(message), { status: r.status });
    }
    return r;
  }

  function nodes(html) {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content;
  }

  function debounce(fn, ms) {
    let timer;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  let toastTimer;
  function toast(message, ok = false) {
    const el = $("#toast");
    if (!el) return;
    el.textContent = message;
    el.classList.toggle("ok", ok);
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, ok ? 2500 : 6000);
  }

  // Times: rendered in UTC by the server, shown in the agent's time zone; "since" labels kept fresh.
  const timeFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  function shortDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return `${seconds}s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes}m`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) { const rest = minutes % 60; return rest && hours < 10 ? `${hours}h ${rest}m` : `${hours}h`; }
    return `${Math.floor(hours / 24)}d`;
  }
  function localizeTimes(root = document) {
    $$("time[data-local]", root).forEach((t) => {
      const d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = timeFmt.format(d);
    });
  }
  function refreshClocks() {
    const now = Date.now();
    $$(".row-time").forEach((t) => {
      const d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = shortDuration((now - d) / 1000);
    });
    $$(".window[data-closes]").forEach((w) => {
      const left = (new Date(w.dataset.closes) - now) / 1000;
      w.textContent = left > 0 ? `${shortDuration(left)} left` : "Window closed";
      w.classList.toggle("closed", left <= 0);
      w.classList.toggle("urgent", left > 0 && left < 3 * 3600);
    });
  }

  // --- SMS segments: the same rules as providers/sms.py (GSM 03.38 / UCS-2) -----------------------
  const GSM_BASIC = new Set(Array.from(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ" +
    "ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§" +
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"));
  const GSM_EXT = new Set(Array.from("\f^{}\\[~]|€"));
  function smsCount(text) {
    const chars = Array.from(text);
    const gsm = chars.every((c) => GSM_BASIC.has(c) || GSM_EXT.has(c));
    const costs = chars.map((c) => (gsm ? (GSM_EXT.has(c) ? 2 : 1) : (c.codePointAt(0) > 0xffff ? 2 : 1)));
    const units = costs.reduce((a, b) => a + b, 0);
    let segments = 1;
    if (units > (gsm ? 160 : 70)) {
      const room = gsm ? 153 : 67;
      let used = 0;
      for (const cost of costs) {
        if (used + cost > room) { segments += 1; used = 0; }
        used += cost;
      }
    }
    return { encoding: gsm ? "GSM-7" : "UCS-2", units, segments };
  }
  window.AlexiaSMS = { count: smsCount };

  // --- live connection ------------------------------------------------------------------------------
  const live = { ws: null, attempts: 0, opened: 0, ping: null, handlers: [], retryTimer: null };
  function setLiveState(state, text) {
    const dot = $("#live-dot");
    if (dot) { dot.dataset.state = state; dot.title = text; }
    const status = $("#live-status");
    if (status) status.textContent = state === "live" ? "" : text;
  }
  function connect() {
    clearTimeout(live.retryTimer);
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/inbox/`);
    live.ws = ws;
    ws.onopen = () => {
      const reconnect = live.opened > 0;
      live.opened += 1;
      live.attempts = 0;
      setLiveState("live", "Live");
      clearInterval(live.ping);
      live.ping = setInterval(() => { if (ws.readyState === 1) ws.send(JSON.stringify({ type: "ping" })); }, 25000);
      // Whatever happened while we were away (or between page render and now) is fetched again.
      live.handlers.forEach((h) => h.catchUp && h.catchUp(reconnect));
    };
    ws.onmessage = (e) => {
      let event;
      try { event = JSON.parse(e.data); } catch (err) { return; }
      live.handlers.forEach((h) => h.event && h.event(event));
    };
    ws.onclose = () => {
      clearInterval(live.ping);
      if (live.ws !== ws) return;
      // Exponential backoff with jitter: 1s, 2s, 4s... capped at 30s.
      const delay = Math.min(30000, 1000 * 2 ** live.attempts) * (0.5 + Math.random() / 2);
      live.attempts += 1;
      setLiveState("offline", `Offline, reconnecting in ${Math.round(delay / 1000)}s…`);
      live.retryTimer = setTimeout(connect, delay);
    };
  }
  window.addEventListener("online", () => { if (!live.ws || live.ws.readyState > 1) connect(); });
  window.AlexiaLive = live;

  // Title badge and optional browser notifications for customers' new messages.
  const baseTitle = document.title;
  let unseen = 0;
  function bumpTitle() {
    if (!document.hidden) return;
    unseen += 1;
    document.title = `(${unseen}) ${baseTitle}`;
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { unseen = 0; document.title = currentTitle || baseTitle; }
  });
  let currentTitle = "";
  function notify(data) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) return;
    const n = new Notification("New message", { body: (data.text || "[attachment]").slice(0, 120), tag: `conv-${data.conversation}` });
    n.onclick = () => { window.focus(); if (inbox) openConversation(String(data.conversation), true); n.close(); };
  }

  // =================================================================================================
  // Dashboard page
  // =================================================================================================
  if (dashboard) {
    const refresh = debounce(async () => {
      try { dashboard.innerHTML = await getHTML(dashboard.dataset.url); localizeTimes(dashboard); } catch (e) { /* next event */ }
    }, 800);
    live.handlers.push({ event: (ev) => { if (ev.type && ev.type !== "hello" && ev.type !== "pong") refresh(); }, catchUp: () => refresh() });
    setInterval(refresh, 60000);
    localizeTimes();
    connect();
  }

  if (!inbox) return;

  // =================================================================================================
  // Inbox page
  // =================================================================================================
  const list = $("#conversation-list");
  const filtersForm = $("#filters");
  const search = $("#search");
  const pane = $("#pane");
  let currentId = inbox.dataset.conversationId || "";
  const selected = new Set();

  function filterParams() {
    const params = new URLSearchParams();
    new FormData(filtersForm).forEach((v, k) => { if (v) params.set(k, v); });
    if (search.value.trim()) params.set("q", search.value.trim());
    return params;
  }
  function pageUrl(id) {
    const qs = filterParams().toString();
    return (id ? `/conversations/${id}/` : inbox.dataset.baseUrl) + (qs ? `?${qs}` : "");
  }

  // --- list -----------------------------------------------------------------------------------------
  function applyCounts(root) {
    const counts = $("[data-counts]", root);
    if (!counts) return;
    ["mine", "unassigned", "all"].forEach((k) => {
      const el = $(`[data-count="${k}"]`);
      if (el) el.textContent = counts.dataset[k];
    });
    const teams = $("#team-counts", root);
    if (teams) {
      const data = JSON.parse(teams.textContent || "{}");
      $$('[data-count^="team-"]').forEach((el) => { el.textContent = data[el.dataset.count.slice(5)] || 0; });
    }
  }
  function decorateRows() {
    $$(".conv-row", list).forEach((row) => {
      row.classList.toggle("selected", row.dataset.id === currentId);
      const box = $(".row-select", row);
      if (box) box.checked = selected.has(row.dataset.id);
    });
    if (cursorId) { const row = $(`#conv-${cursorId}`); if (row) row.classList.add("cursor"); }
    refreshClocks();
  }
  let listSeq = 0;
  async function refreshList() {
    const seq = ++listSeq;
    const html = await getHTML(`${inbox.dataset.listUrl}?${filterParams()}`);
    if (seq !== listSeq) return;  // a newer refresh is on its way
    const scroll = list.scrollTop;
    list.innerHTML = html;
    list.scrollTop = scroll;
    applyCounts(list);
    decorateRows();
  }
  const scheduleListRefresh = debounce(() => refreshList().catch(() => {}), 250);
  // The counts in a refreshed list may come from the server's cache, up to data-counts-ttl seconds old
  // (INBOX_COUNTS_CACHE_SECONDS): once conversation events stop, refresh once more after that delay so
  // the counts include the last change.
  const countsTtl = Number(inbox.dataset.countsTtl || 0);
  const scheduleCountsCatchUp = countsTtl > 0
    ? debounce(() => refreshList().catch(() => {}), countsTtl * 1000 + 500)
    : () => {};

  filtersForm.addEventListener("change", () => {
    history.replaceState(history.state, "", pageUrl(currentId));
    refreshList().catch((e) => toast(e.message));
  });
  filtersForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const button = e.submitter;
    if (button && button.name === "view") {
      $("#filter-view").value = button.value;
      $$(".view", filtersForm).forEach((b) => b.classList.toggle("active", b === button));
    }
    history.replaceState(history.state, "", pageUrl(currentId));
    refreshList().catch((err) => toast(err.message));
    inbox.classList.remove("show-filters");
  });
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); refreshList(); });
  search.addEventListener("input", debounce(() => {
    history.replaceState(history.state, "", pageUrl(currentId));
    refreshList().catch(() => {});
  }, 250));

  list.addEventListener("click", async (e) => {
    const more = e.target.closest("[data-more]");
    if (more) {
      const params = filterParams();
      params.set("before", more.dataset.more);
      const html = await getHTML(`${inbox.dataset.listUrl}?${params}`);
      more.closest("li").remove();
      $$("[data-counts]", list).forEach((li) => li.remove());
      list.append(nodes(html));
      decorateRows();
      return;
    }
    const link = e.target.closest("a[data-open]");
    if (link && !e.metaKey && !e.ctrlKey && !e.shiftKey && e.button === 0) {
      e.preventDefault();
      openConversation(link.dataset.open, true);
    }
  });

  // --- bulk actions ---------------------------------------------------------------------------------
  function updateBulkBar() {
    $("#bulk-bar").hidden = selected.size === 0;
    $("#bulk-count").textContent = selected.size;
  }
  list.addEventListener("change", (e) => {
    const box = e.target.closest(".row-select");
    if (!box) return;
    if (box.checked) selected.add(box.value); else selected.delete(box.value);
    updateBulkBar();
  });
  async function bulk(action, value = "") {
    if (!selected.size) return;
    try {
      const r = await post(inbox.dataset.bulkUrl, { ids: Array.from(selected), action, value });
      const { updated } = await r.json();
      toast(`Updated ${updated} conversation${updated === 1 ? "" : "s"}`, true);
      selected.clear();
      updateBulkBar();
      await refreshList();
      if (currentId) refreshHeader();
    } catch (e) { toast(e.message); }
  }
  $$("[data-bulk]").forEach((b) => b.addEventListener("click", () => bulk(b.dataset.bulk)));
  $("[data-bulk-clear]").addEventListener("click", () => { selected.clear(); updateBulkBar(); decorateRows(); });
  [["#bulk-assign", "assign"], ["#bulk-priority", "priority"], ["#bulk-label", "label"]].forEach(([sel, action]) => {
    const s = $(sel);
    s.addEventListener("change", () => {
      if (!s.value) return;
      bulk(action, s.value === "__none__" ? "" : s.value);
      s.value = "";
    });
  });

  // --- the conversation pane -----------------------------------------------------------------------
  const presence = { timer: null, composingUntil: 0 };
  let paneSeq = 0;

  async function openConversation(id, push) {
    const seq = ++paneSeq;
    let html;
    try { html = await getHTML(`/fragments/conversations/${id}/`); } catch (e) { toast(e.status === 404 ? "This conversation is not available." : e.message); return; }
    if (seq !== paneSeq) return;
    leavePresence();
    currentId = String(id);
    pane.innerHTML = html;
    inbox.classList.add("has-conversation");
    inbox.dataset.conversationId = currentId;
    if (push) history.pushState({ conversation: currentId }, "", pageUrl(currentId));
    cursorId = currentId;
    $$(".conv-row.cursor").forEach((r) => r.classList.remove("cursor"));
    decorateRows();
    initPane();
  }
  function closeConversation(push) {
    leavePresence();
    currentId = "";
    inbox.dataset.conversationId = "";
    inbox.classList.remove("has-conversation");
    pane.innerHTML = '<div class="empty-pane"><p>Pick a conversation.</p></div>';
    if (push) history.pushState({}, "", pageUrl(""));
    document.title = baseTitle;
    decorateRows();
  }
  window.addEventListener("popstate", () => {
    const m = location.pathname.match(/^\/conversations\/(\d+)\//);
    if (m) openConversation(m[1], false); else closeConversation(false);
  });

  const paneEl = () => $("#pane-inner");
  const threadEl = () => $("#thread");

  function nearBottom(thread) { return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 120; }
  function scrollToBottom() { const t = threadEl(); if (t) t.scrollTop = t.scrollHeight; }

  function initPane() {
    const p = paneEl();
    if (!p) return;
    currentTitle = `${$(".conv-name", p).textContent} · Inbox · Alexia`;
    if (!document.hidden) document.title = currentTitle;
    localizeTimes(p);
    scrollToBottom();
    // Images load after the first layout: keep the newest message in view.
    $$("img", threadEl()).forEach((img) => img.addEventListener("load", () => { if (nearBottom(threadEl())) scrollToBottom(); }, { once: true }));
    threadEl().addEventListener("scroll", onThreadScroll);
    loadContact();
    markRead();
    initComposer();
    beatPresence();
    clearInterval(presence.timer);
    presence.timer = setInterval(beatPresence, 10000);
  }

  async function markRead() {
    const p = paneEl();
    if (!p || document.hidden) return;
    try { await post(p.dataset.readUrl, {}); } catch (e) { /* the badge stays; harmless */ }
  }
  const scheduleMarkRead = debounce(markRead, 600);

  // Older messages, on scroll to the top.
  let loadingOlder = false;
  async function loadOlder() {
    const thread = threadEl();
    const marker = thread && $(".load-older", thread);
    if (!marker || loadingOlder) return;
    loadingOlder = true;
    try {
      const html = await getHTML(`${paneEl().dataset.threadUrl}?before=${marker.dataset.before}`);
      const before = thread.scrollHeight;
      const frag = nodes(html);
      $$(".msg", frag).forEach((m) => { if ($(`#${m.id}`, thread)) m.remove(); });
      marker.replaceWith(frag);
      thread.scrollTop += thread.scrollHeight - before;  // keep what the agent was reading in place
      localizeTimes(thread);
    } catch (e) { toast(e.message); } finally { loadingOlder = false; }
  }
  function onThreadScroll() { if (threadEl().scrollTop < 80) loadOlder(); }
  pane.addEventListener("click", (e) => { if (e.target.closest("[data-load-older]")) loadOlder(); });

  function placeMessage(el) {
    const thread = threadEl();
    if (!thread) return;
    const existing = $(`#${el.id}`, thread);
    if (existing) { existing.replaceWith(el); return; }
    const pinned = nearBottom(thread);
    $(".thread-empty", thread)?.remove();
    const at = el.dataset.at;
    const later = $$(".msg", thread).find((m) => m.dataset.at > at || (m.dataset.at === at && Number(m.dataset.id) > Number(el.dataset.id)));
    if (later) later.before(el); else thread.append(el);
    if (pinned) scrollToBottom();
  }
  function insertMessageHTML(html) {
    const frag = nodes(html);
    const el = $(".msg", frag);
    if (!el) return;
    localizeTimes(frag);
    placeMessage(el);
  }
  const pendingMessages = new Map();
  function upsertMessage(id) {
    // Coalesce bursts (sent, delivered, read in quick succession) into one fetch per message.
    clearTimeout(pendingMessages.get(id));
    pendingMessages.set(id, setTimeout(async () => {
      pendingMessages.delete(id);
      try { insertMessageHTML(await getHTML(`/fragments/messages/${id}/`)); } catch (e) { /* 404: another org's or deleted */ }
    }, 60));
  }
  async function catchUpThread() {
    const p = paneEl();
    if (!p) return;
    const html = await getHTML(p.dataset.threadUrl);
    const frag = nodes(html);
    localizeTimes(frag);
    $$(".msg", frag).forEach(placeMessage);
  }

  // Retry a failed message.
  pane.addEventListener("click", async (e) => {
    const btn = e.target.closest("[data-retry]");
    if (!btn) return;
    btn.disabled = true;
    try { insertMessageHTML(await (await post(btn.dataset.retry, {})).text()); } catch (err) { toast(err.message); btn.disabled = false; }
  });

  // --- header actions -------------------------------------------------------------------------------
  async function refreshHeader() {
    const p = paneEl();
    if (!p) return;
    const slot = $("#conv-header-slot");
    if (slot.contains(document.activeElement) || $("details[open]", slot)) return;  // the agent is using it
    try { slot.innerHTML = await getHTML(p.dataset.headerUrl); localizeTimes(slot); } catch (e) { /* keep */ }
  }
  const scheduleHeaderRefresh = debounce(refreshHeader, 200);

  async function updateConversation(data) {
    const header = $("#conv-header");
    try {
      const html = await (await post(header.dataset.updateUrl, data)).text();
      $("#conv-header-slot").innerHTML = html;
      localizeTimes($("#conv-header-slot"));
      scheduleListRefresh();
      return true;
    } catch (e) { toast(e.message); refreshHeader(); return false; }
  }
  pane.addEventListener("change", (e) => {
    const select = e.target.closest("select[data-update]");
    if (select) updateConversation({ [select.name]: select.value });
  });
  pane.addEventListener("click", async (e) => {
    const status = e.target.closest("[data-set-status]");
    if (status) { updateConversation({ status: status.dataset.setStatus }); return; }
    if (e.target.closest("[data-mark-unread]")) {
      try { await post($("#conv-header").dataset.unreadUrl, {}); toast("Marked unread", true); closeConversation(true); scheduleListRefresh(); } catch (err) { toast(err.message); }
      return;
    }
    if (e.target.closest("[data-toggle-contact]") || e.target.closest("[data-close-contact]")) { paneEl().classList.toggle("show-contact"); return; }
    if (e.target.closest("[data-back]")) { e.preventDefault(); closeConversation(true); return; }
    const preset = e.target.closest("[data-snooze-preset]");
    if (preset) {
      const d = new Date();
      if (preset.dataset.snoozePreset === "1h") d.setHours(d.getHours() + 1);
      else if (preset.dataset.snoozePreset === "tomorrow") { d.setDate(d.getDate() + 1); d.setHours(9, 0, 0, 0); }
      else { d.setDate(d.getDate() + ((8 - d.getDay()) % 7 || 7)); d.setHours(9, 0, 0, 0); }
      updateConversation({ snoozed_until: d.toISOString() });
    }
  });
  pane.addEventListener("submit", async (e) => {
    const form = e.target;
    if (form.matches("[data-labels-form]")) {
      e.preventDefault();
      updateConversation(new FormData(form));
    } else if (form.matches("[data-snooze-form]")) {
      e.preventDefault();
      const value = form.elements.until.value;
      if (value) updateConversation({ snoozed_until: new Date(value).toISOString() });
    } else if (form.matches("[data-contact-form], [data-contact-action]")) {
      e.preventDefault();
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
      const data = new FormData(form);
      data.append("c", currentId);
      try {
        const html = await (await post(form.action, data)).text();
        $("#contact-panel").innerHTML = html;
        toast("Contact saved", true);
        scheduleListRefresh();
        scheduleHeaderRefresh();
      } catch (err) { toast(err.message); }
    } else if (form.id === "composer") {
      e.preventDefault();
      send(form);
    }
  });

  // --- contact panel ------------------------------------------------------------------------------
  async function loadContact() {
    const p = paneEl();
    if (!p) return;
    try { $("#contact-panel").innerHTML = await getHTML(p.dataset.contactUrl); } catch (e) { /* keep placeholder */ }
  }
  pane.addEventListener("input", debounce(async (e) => {
    const box = e.target.closest("[data-merge-search]");
    if (!box) return;
    const root = box.closest(".contact-inner");
    const q = box.value.trim();
    $("#merge-candidates").innerHTML = q ? await getHTML(`${root.dataset.candidatesUrl}?q=${encodeURIComponent(q)}`) : "";
  }, 250));
  pane.addEventListener("click", (e) => {
    const link = e.target.closest(".contact-convs a[data-open]");
    if (link && !e.metaKey && !e.ctrlKey) { e.preventDefault(); openConversation(link.dataset.open, true); }
  });

  // --- composer -------------------------------------------------------------------------------------
  let canned = [];
  function composer() { return $("#composer"); }
  function setMode(mode) {
    const form = composer();
    if (!form) return;
    form.dataset.mode = mode;
    $("#composer-private").value = mode === "note" ? "1" : "0";
    $$(".tab", form).forEach((t) => t.setAttribute("aria-selected", String(t.dataset.mode === mode)));
    const closed = form.dataset.windowClosed === "1";
    const text = $("#composer-text");
    text.disabled = closed && mode === "reply";
    text.placeholder = mode === "note" ? "Write a private note (only agents see it)…"
      : closed ? "Free text is disabled until the customer writes again" : "Write a reply…";
    const picker = $("#template-picker");
    if (picker) picker.disabled = mode === "note";
  }
  function initComposer() {
    const form = composer();
    if (!form) return;
    const data = $("#canned-data");
    canned = data ? JSON.parse(data.textContent) : [];
    setMode("reply");
    updateCounter();
  }
  function updateCounter() {
    const counter = $("#sms-counter");
    if (!counter) return;
    const { encoding, units, segments } = smsCount($("#composer-text").value);
    counter.textContent = `${units} character${units === 1 ? "" : "s"} · ${segments} segment${segments === 1 ? "" : "s"} · ${encoding}`;
  }
  async function send(form) {
    const error = $("#composer-error");
    const button = $("#send-btn");
    error.hidden = true;
    const data = new FormData(form);
    button.disabled = true;
    try {
      const html = await (await post(form.action, data, { "Idempotency-Key": randomKey() })).text();
      insertMessageHTML(html);
      scrollToBottom();
      $("#composer-text").value = "";
      $("#composer-files").value = "";
      $("#attach-list").textContent = "";
      $$("#template-picker input[type=text]", form).forEach((i) => { if (i.name !== "template_language") i.value = ""; });
      updateCounter();
      scheduleListRefresh();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }
  pane.addEventListener("click", (e) => {
    const tab = e.target.closest(".composer .tab");
    if (tab) { setMode(tab.dataset.mode); $("#composer-text").focus(); return; }
    if (e.target.closest("[data-add-variable]")) {
      const box = $("#tpl-vars");
      const n = $$("input", box).length + 1;
      const label = document.createElement("label");
      label.append(`{{${n}}} `);
      const input = document.createElement("input");
      input.type = "text"; input.name = "template_variable";
      label.append(input);
      box.append(label);
      input.focus();
    }
    const item = e.target.closest("#canned-menu li");
    if (item) pickCanned(Number(item.dataset.index));
  });
  pane.addEventListener("change", (e) => {
    if (e.target.id === "composer-files") {
      $("#attach-list").textContent = Array.from(e.target.files).map((f) => f.name).join(", ");
    }
  });

  // Canned responses: "/" at the start of a word opens the menu, filtered as you type.
  let cannedMatches = [];
  let cannedIndex = 0;
  function cannedToken(text, caret) {
    const m = text.slice(0, caret).match(/(^|\s)\/([\w-]*)$/);
    return m ? { start: caret - m[2].length - 1, query: m[2].toLowerCase() } : null;
  }
  function renderCanned() {
    const menu = $("#canned-menu");
    const text = $("#composer-text");
    const token = cannedToken(text.value, text.selectionStart);
    cannedMatches = token ? canned.filter((c) => c.shortcut.toLowerCase().startsWith(token.query)) : [];
    if (!cannedMatches.length) { menu.hidden = true; return; }
    cannedIndex = Math.min(cannedIndex, cannedMatches.length - 1);
    menu.replaceChildren(...cannedMatches.map((c, i) => {
      const li = document.createElement("li");
      li.dataset.index = i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === cannedIndex));
      const s = document.createElement("span"); s.className = "shortcut"; s.textContent = `/${c.shortcut}`;
      const t = document.createElement("span"); t.className = "text"; t.textContent = c.text.slice(0, 80);
      li.append(s, t);
      return li;
    }));
    menu.hidden = false;
  }
  function pickCanned(i) {
    const text = $("#composer-text");
    const token = cannedToken(text.value, text.selectionStart);
    const choice = cannedMatches[i];
    if (!token || !choice) return;
    text.value = text.value.slice(0, token.start) + choice.text + text.value.slice(text.selectionStart);
    const caret = token.start + choice.text.length;
    text.setSelectionRange(caret, caret);
    $("#canned-menu").hidden = true;
    text.focus();
    updateCounter();
  }
  pane.addEventListener("input", (e) => {
    if (e.target.id !== "composer-text") return;
    cannedIndex = 0;
    renderCanned();
    updateCounter();
    if (Date.now() > presence.composingUntil - 4000) { presence.composingUntil = Date.now() + 6000; beatPresence(); }
    presence.composingUntil = Date.now() + 6000;
  });
  pane.addEventListener("keydown", (e) => {
    if (e.target.id !== "composer-text") return;
    const menu = $("#canned-menu");
    if (!menu.hidden) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        cannedIndex = (cannedIndex + (e.key === "ArrowDown" ? 1 : -1) + cannedMatches.length) % cannedMatches.length;
        renderCanned();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); pickCanned(cannedIndex); return; }
      if (e.key === "Escape") { e.preventDefault(); menu.hidden = true; return; }
    }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); composer().requestSubmit(); return; }
    if (e.key === "Escape") e.target.blur();
  });

  // --- presence -------------------------------------------------------------------------------------
  async function beatPresence() {
    const p = paneEl();
    if (!p) return;
    const data = { composing: Date.now() < presence.composingUntil ? "1" : "0" };
    try {
      const r = await post(p.dataset.presenceUrl, data);
      const { viewers } = await r.json();
      const box = $("#presence");
      if (!box) return;
      box.hidden = viewers.length === 0;
      const typing = viewers.filter((v) => v.composing).map((v) => v.name);
      const names = viewers.map((v) => v.name);
      box.textContent = typing.length
        ? `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing a reply here. Coordinate before you answer.`
        : `${names.join(", ")} ${names.length > 1 ? "are" : "is"} also viewing this conversation.`;
    } catch (e) { /* next beat */ }
  }
  function leavePresence() {
    clearInterval(presence.timer);
    const p = paneEl();
    if (!p) return;
    const data = new FormData();
    data.append("leave", "1");
    data.append("csrfmiddlewaretoken", csrf());
    navigator.sendBeacon(p.dataset.presenceUrl, data);
  }
  window.addEventListener("pagehide", leavePresence);

  // --- keyboard -------------------------------------------------------------------------------------
  let cursorId = currentId;
  function moveCursor(step) {
    const rows = $$(".conv-row", list);
    if (!rows.length) return;
    let i = rows.findIndex((r) => r.dataset.id === cursorId);
    i = i < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, i + step));
    rows.forEach((r) => r.classList.remove("cursor"));
    rows[i].classList.add("cursor");
    rows[i].scrollIntoView({ block: "nearest" });
    cursorId = rows[i].dataset.id;
  }
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t.closest && t.closest("input, textarea, select, [contenteditable]");
    if (typing) {
      if (e.key === "Escape" && t === search) search.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const dialog = $("#shortcuts");
    switch (e.key) {
      case "j": moveCursor(1); break;
      case "k": moveCursor(-1); break;
      case "Enter": if (cursorId && cursorId !== currentId) openConversation(cursorId, true); else return; break;
      case "r": if (composer()) { setMode("reply"); $("#composer-text").focus(); } break;
      case "n": if (composer()) { setMode("note"); $("#composer-text").focus(); } break;
      case "e": ($("#resolve-btn") || $("#reopen-btn") || { click() {} }).click(); break;
      case "a": { const s = $("#assign-select"); if (s) { s.focus(); if (s.showPicker) { try { s.showPicker(); } catch (err) { /* needs a gesture */ } } } break; }
      case "/": search.focus(); search.select(); break;
      case "?": if (dialog.open) dialog.close(); else dialog.showModal(); break;
      default: return;
    }
    e.preventDefault();
  });
  $$("[data-shortcuts]").forEach((b) => b.addEventListener("click", () => $("#shortcuts").showModal()));
  $("[data-toggle-filters]").addEventListener("click", () => inbox.classList.toggle("show-filters"));

  // Optional browser notifications.
  const notifyToggle = $("#notify-toggle");
  if ("Notification" in window && Notification.permission === "default") {
    notifyToggle.hidden = false;
    notifyToggle.addEventListener("click", async () => {
      await Notification.requestPermission();
      notifyToggle.hidden = Notification.permission !== "default";
    });
  }

  // --- live events ----------------------------------------------------------------------------------
  live.handlers.push({
    event(ev) {
      const data = ev.data || {};
      if (ev.type === "message.created" || ev.type === "message.updated") {
        const mine = currentId && String(data.conversation) === currentId;
        if (mine) upsertMessage(data.id);
        if (ev.type === "message.created" && data.direction === "in") {
          bumpTitle();
          notify(data);
          if (mine) scheduleMarkRead();
        }
      } else if (ev.type === "conversation.created" || ev.type === "conversation.updated") {
        scheduleListRefresh();
        scheduleCountsCatchUp();
        if (currentId && String(data.id) === currentId) scheduleHeaderRefresh();
      }
    },
    catchUp(reconnect) {
      scheduleListRefresh();
      if (currentId) {
        catchUpThread().catch(() => {});
        if (reconnect) scheduleHeaderRefresh();
      }
    },
  });

  // --- start ----------------------------------------------------------------------------------------
  localizeTimes();
  decorateRows();
  setInterval(refreshClocks, 30000);
  if (currentId) initPane();
  connect();
})();
