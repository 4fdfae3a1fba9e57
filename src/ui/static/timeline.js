/*
 * Draws one cluster's timeline as SVG: one lane per node, each report a dot
 * placed in time, each barrier resolution a vertical line across the lanes
 * (red and dashed when it resolved abort), the abort reason beside it.
 * Plain browser JavaScript, no dependencies; exposes window.drawTimeline.
 */
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var LABEL = { write_state: 'info', wait_start: 'wait start', wait_ready: 'wait ready', wait_finish: 'wait finish', finished: 'finished', failed: 'failed', abort: 'abort' };
  var STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 1800000, 3600000, 7200000];

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) if (attrs[k] !== undefined) node.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, content, attrs) {
    var t = el('text', Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = content;
    return t;
  }
  function duration(ms) {
    if (ms < 1000) return Math.round(ms) + 'ms';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + 's';
    var s = Math.round(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60) + 's';
    var m = Math.round(ms / 60000);
    return Math.floor(m / 60) + 'h' + (m % 60) + 'm';
  }
  window.formatDuration = duration;

  /** Places labels in rows so that none overlaps another: place(x0, x1) -> the first free row. */
  function packer() {
    var rows = [];
    return function (x0, x1) {
      for (var r = 0; ; r++) {
        var used = rows[r] || (rows[r] = []);
        if (
          used.every(function (u) {
            return x1 < u[0] || x0 > u[1];
          })
        ) {
          used.push([x0, x1]);
          return r;
        }
      }
    };
  }

  /**
   * view: the cluster (GET /ops/clusters/:id `cluster`), events: its event log,
   * now: server time (ms) used as the right edge while the cluster is open.
   */
  window.drawTimeline = function (container, view, events, now) {
    var width = Math.max(container.clientWidth || 0, 640);
    var left = 180,
      right = 60,
      top = 74,
      laneH = 66;
    var lanes = view.nodes.map(function (n) {
      return n.job;
    });
    var syncs = events.filter(function (e) {
      return e.type === 'message' && e.released && e.released.length > 0;
    });
    var height = top + lanes.length * laneH + 34 + (syncs.length > 0 ? 28 : 0);
    var reports = events.filter(function (e) {
      return e.type === 'report';
    });
    var resolutions = events.filter(function (e) {
      return e.type === 'resolution';
    });
    // Machines often boot long after the submit: the axis starts at the first event after it.
    var t0 = view.created;
    var later = events.filter(function (e) {
      return e.type !== 'submitted';
    });
    if (later.length > 0)
      t0 = Math.min.apply(
        null,
        later.map(function (e) {
          return e.at;
        }),
      );
    var tEnd = t0;
    events.forEach(function (e) {
      if (e.at > tEnd) tEnd = e.at;
    });
    if (!view.final && now > tEnd) tEnd = now;
    var span = Math.max(tEnd - t0, 20) * 1.04;
    var x = function (t) {
      return left + ((t - t0) / span) * (width - left - right);
    };
    var laneY = function (job) {
      return top + lanes.indexOf(job) * laneH + laneH / 2;
    };

    var svg = el('svg', { width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': 'timeline of cluster ' + view.id });

    // Time axis, from the first event; how long before it the cluster was submitted.
    var axis = el('g', { class: 'axis' }, svg);
    var step =
      STEPS.find(function (s) {
        return span / s <= 8;
      }) || 3600000;
    for (var t = 0; t <= span; t += step) {
      el('line', { x1: x(t0 + t), x2: x(t0 + t), y1: top - 6, y2: height - 28 }, axis);
      text(axis, x(t0 + t), height - 12, '+' + duration(t), { 'text-anchor': 'middle' });
    }
    text(axis, 12, height - 12, t0 > view.created ? 'submitted ' + duration(t0 - view.created) + ' before' : 'from submit');

    // Lanes.
    view.nodes.forEach(function (n) {
      var y = laneY(n.job);
      var g = el('g', { class: 'lane', 'data-lane': n.job, 'data-state': n.state || 'submitted' }, svg);
      el('line', { class: 'lane-line', x1: left, x2: width - right, y1: y, y2: y }, g);
      text(g, 12, y - 3, n.job, { class: 'lane-label' });
      text(g, 12, y + 12, n.roles + (n.ip ? '  ' + n.ip : ''), { class: 'lane-roles' });
    });

    // Barrier resolutions: vertical lines across every lane, labels packed in rows above.
    var placeBarrier = packer();
    resolutions.forEach(function (e) {
      var bx = x(e.at);
      var label = e.barrier + (e.result === 'abort' ? ' \u2717 abort' : ' \u2713') + (e.took_ms !== undefined ? ' ' + duration(e.took_ms) : '');
      var w = label.length * 6.6 + 6;
      var nearEnd = bx + w > width - 4;
      var row = Math.min(placeBarrier(nearEnd ? bx - w : bx, nearEnd ? bx : bx + w), 3);
      var g = el('g', { class: 'barrier-line result-' + e.result, 'data-barrier': e.barrier, 'data-result': e.result }, svg);
      el('line', { x1: bx, x2: bx, y1: top - 10 - row * 14, y2: top + lanes.length * laneH }, g);
      text(g, nearEnd ? bx - 4 : bx + 4, top - 12 - row * 14, label, { 'text-anchor': nearEnd ? 'end' : 'start' });
      if (e.reason) el('title', {}, g).textContent = e.reason;
    });

    // Named syncs and messages (lava-sync, lava-wait, ...): a dashed marker where a message released
    // waiting nodes, labelled with its ID, and on each released node's lane a bar from the start of its
    // wait to its release; hovering says who waited how long.
    var placeSync = packer();
    syncs.forEach(function (e) {
      var mx = x(e.at);
      var label = '⇄ ' + e.msg;
      var w = label.length * 6.2 + 6;
      var row = Math.min(placeSync(mx, mx + w), 1);
      var g = el('g', { class: 'sync-marker', 'data-msg': e.msg }, svg);
      el('line', { x1: mx, x2: mx, y1: top - 6, y2: top + lanes.length * laneH + 2 + row * 12 }, g);
      text(g, mx + 4, top + lanes.length * laneH + 12 + row * 12, label, { class: 'sync-label' });
      e.released.forEach(function (r) {
        if (lanes.indexOf(r.job) < 0) return;
        var y = laneY(r.job) + 8;
        var bar = el('rect', { class: 'sync-wait', 'data-job': r.job, x: x(e.at - r.waited_ms), y: y, width: Math.max(x(e.at) - x(e.at - r.waited_ms), 2), height: 4 }, g);
        el('title', {}, bar).textContent = r.job + ' waited ' + duration(r.waited_ms) + ' at ' + (r.mode === 'all' ? 'wait-all ' : 'wait ') + e.msg + (r.role ? ' (' + r.role + ')' : '');
      });
      el('title', {}, g).textContent =
        e.msg +
        ' released by ' +
        e.job +
        ' (' +
        e.op +
        '): ' +
        e.released
          .map(function (r) {
            return r.job + ' waited ' + duration(r.waited_ms);
          })
          .join(', ');
    });

    // Reports: a dot per report on its node's lane; labels above and below, packed so none overlaps.
    var OFFSETS = [-10, 19, -21, 30];
    var placeLabel = {};
    reports.forEach(function (e) {
      if (lanes.indexOf(e.job) < 0) return;
      var rx = x(e.at),
        y = laneY(e.job);
      var label = LABEL[e.report] || e.report;
      var w = label.length * 5.6 + 4;
      var place = placeLabel[e.job] || (placeLabel[e.job] = packer());
      var row = Math.min(place(rx - w / 2, rx + w / 2), OFFSETS.length - 1);
      var g = el('g', { class: 'report kind-' + e.report, 'data-job': e.job, 'data-report': e.report, 'data-state': e.state }, svg);
      el('circle', { cx: rx, cy: y, r: e.state === 'abort' ? 7 : 5 }, g);
      text(g, rx, y + OFFSETS[row], label, { 'text-anchor': 'middle' });
      if (e.state === 'abort' && e.reason) {
        var nearEnd = rx > width - right - 200;
        var short = e.reason.length > 60 ? e.reason.slice(0, 57) + '\u2026' : e.reason;
        text(g, nearEnd ? rx - 10 : rx + 10, y + 4, short, { class: 'abort-note', 'text-anchor': nearEnd ? 'end' : 'start' });
      }
      el('title', {}, g).textContent = e.job + ' ' + e.report + ' at +' + duration(e.at - t0) + (e.reason ? ': ' + e.reason : '');
    });

    container.replaceChildren(svg);
  };
})();
