/*
 * The operator page: the list of clusters, kept up to date from the event
 * stream (Server-Sent Events, fed from NATS by the scheduler), and one
 * cluster's timeline. Plain browser JavaScript; data from /ops/*.
 */
(function () {
  'use strict';
  var clusters = new Map();
  var selected = location.hash ? decodeURIComponent(location.hash.slice(1)) : '';
  var skew = 0; // server time - browser time, ms
  var pending = new Map();

  function $(sel) {
    return document.querySelector(sel);
  }
  function td(tr, content, cls) {
    var c = tr.insertCell();
    c.textContent = content;
    if (cls) c.className = cls;
    return c;
  }
  function now() {
    return Date.now() + skew;
  }
  function stateOf(s) {
    return s.final ? s.final : 'open';
  }
  function stateText(s) {
    if (s.final === 'finish') return 'finished';
    if (s.final === 'abort') return 'aborted';
    return 'at ' + (s.pending || '?');
  }
  async function getJson(url) {
    var r = await fetch(url);
    if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
    var body = await r.json();
    if (body.now) skew = body.now - Date.now();
    return body;
  }

  function renderList() {
    var tbody = $('#clusters tbody');
    var rows = Array.from(clusters.values()).sort(function (a, b) {
      return b.created - a.created;
    });
    tbody.replaceChildren();
    rows.forEach(function (s) {
      var tr = tbody.insertRow();
      tr.dataset.cluster = s.id;
      tr.dataset.state = stateOf(s);
      if (s.id === selected) tr.className = 'selected';
      td(tr, s.id);
      td(tr, s.spec);
      td(tr, s.roles);
      td(tr, stateText(s), 'state-' + stateOf(s));
      td(tr, s.final ? s.nodes + ' nodes' : s.waiting + '/' + s.nodes);
      td(tr, window.formatDuration(Math.max(0, now() - s.created)), 'muted');
      tr.addEventListener('click', function () {
        location.hash = encodeURIComponent(s.id);
      });
    });
    $('#empty').hidden = rows.length > 0;
  }

  function renderDetail(d) {
    var s = d.summary,
      v = d.cluster;
    $('#detail-pane').hidden = false;
    $('#detail-pane').dataset.cluster = v.id;
    $('#detail-title').textContent = 'cluster ' + v.id;
    $('#detail-sub').textContent = 'spec ' + v.spec + ' · ' + v.nodes.length + ' nodes · ' + stateText(s) + ' · created ' + new Date(v.created).toLocaleString();
    window.drawTimeline($('#timeline'), v, d.events, d.now);
    var reason = $('#abort-reason');
    reason.hidden = !s.reason;
    reason.textContent = s.reason ? 'aborted: ' + s.reason : '';
    renderVerdict(d.result);
    var tbody = $('#nodes tbody');
    tbody.replaceChildren();
    v.nodes.forEach(function (n) {
      var tr = tbody.insertRow();
      tr.dataset.job = n.job;
      td(tr, n.job);
      td(tr, n.roles);
      td(tr, n.state || 'submitted', 'state-' + (n.state === 'abort' ? 'abort' : n.state === 'finish' ? 'finish' : 'open'));
      td(tr, n.ip || '-');
      td(tr, n.direct_ips || '-');
    });
  }

  /** The cluster's verdict (or its state while open or retrying) and, when it was retried, every attempt. */
  function renderVerdict(r) {
    var p = $('#verdict');
    if (!r) {
      p.textContent = '';
      return;
    }
    p.dataset.verdict = r.verdict || r.state;
    p.className = 'verdict verdict-' + (r.verdict || r.state);
    p.textContent =
      r.state === 'ended' ? 'verdict ' + r.verdict + (r.end_cause && r.end_cause !== 'finished' ? ' (' + r.end_cause + ')' : '') : r.state === 'retrying' ? 'retrying after ' + r.end_cause : 'open';
    var table = $('#attempts');
    table.hidden = r.attempts.length < 2;
    var tbody = $('#attempts tbody');
    tbody.replaceChildren();
    r.attempts.forEach(function (a) {
      var tr = tbody.insertRow();
      tr.dataset.attempt = String(a.attempt);
      td(tr, String(a.attempt));
      td(tr, a.cluster);
      td(tr, a.verdict || a.state, 'state-' + (a.verdict === 'passed' ? 'finish' : a.verdict ? 'abort' : 'open'));
      td(tr, a.end_cause || '-');
    });
  }

  async function refresh(id) {
    try {
      var d = await getJson('/ops/clusters/' + encodeURIComponent(id));
      clusters.set(id, d.summary);
      renderList();
      if (id === selected) renderDetail(d);
    } catch (err) {
      console.warn(err);
    }
  }
  /** Coalesces a burst of events of one cluster into one fetch. */
  function refreshSoon(id) {
    if (pending.has(id)) return;
    pending.set(
      id,
      setTimeout(function () {
        pending.delete(id);
        void refresh(id);
      }, 60),
    );
  }

  function select() {
    selected = location.hash ? decodeURIComponent(location.hash.slice(1)) : '';
    renderList();
    if (selected) void refresh(selected);
    else $('#detail-pane').hidden = true;
  }

  function connect() {
    var es = new EventSource('/ops/events');
    es.onopen = function () {
      $('#live').className = 'live';
      $('#live').textContent = 'live';
    };
    es.onerror = function () {
      $('#live').className = 'live off';
      $('#live').textContent = 'reconnecting…';
    };
    es.onmessage = function (m) {
      var ev = JSON.parse(m.data);
      refreshSoon(ev.cluster);
    };
  }

  /** Machines per testbox and the clusters waiting for admission (GET /ops/machines). */
  async function refreshMachines() {
    var d;
    try {
      d = await getJson('/ops/machines');
    } catch (err) {
      $('#no-machines').textContent = 'cannot load machines: ' + err.message;
      return;
    }
    var ago = function (t) {
      return window.formatDuration(Math.max(0, d.now - t));
    };
    var tbody = $('#machines tbody');
    tbody.replaceChildren();
    d.machines.forEach(function (m) {
      var tr = tbody.insertRow();
      tr.dataset.machine = m.id;
      tr.dataset.state = m.state;
      td(tr, m.testbox);
      td(tr, m.id);
      td(tr, m.state, 'machine-' + m.state);
      td(tr, ago(m.state === 'gone' && m.gone_at ? m.gone_at : m.since), 'muted');
      td(tr, ago(m.seen) + ' ago', 'muted');
      td(tr, m.state === 'reserved' ? m.reserved_for || '' : m.state === 'running' ? m.cluster || '' : '');
      td(tr, m.doing, 'muted');
    });
    $('#no-machines').hidden = d.machines.length > 0;
    var ul = $('#waiting');
    ul.replaceChildren();
    d.waiting.forEach(function (w) {
      var li = document.createElement('li');
      li.dataset.cluster = w.cluster;
      li.textContent = w.cluster + ' waiting ' + window.formatDuration(w.waitingMs) + ' (ends not_admitted in ' + window.formatDuration(Math.max(0, w.admitDeadline - d.now)) + ')';
      var inner = document.createElement('ul');
      w.waitsFor.forEach(function (line) {
        var item = document.createElement('li');
        item.textContent = line;
        inner.appendChild(item);
      });
      li.appendChild(inner);
      ul.appendChild(li);
    });
    $('#no-waiting').hidden = d.waiting.length > 0;
  }

  window.addEventListener('hashchange', select);
  setInterval(refreshMachines, 2000);
  void refreshMachines();
  setInterval(renderList, 1000);
  // Listen first, then load the list: a cluster that changes meanwhile is fetched again.
  connect();
  getJson('/ops/clusters').then(
    function (body) {
      body.clusters.forEach(function (s) {
        if (!clusters.has(s.id)) clusters.set(s.id, s);
      });
      select();
    },
    function (err) {
      $('#empty').textContent = 'cannot load clusters: ' + err.message;
    },
  );
})();
