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

  /**
   * view: the cluster (GET /ops/clusters/:id `cluster`), events: its event log,
   * now: server time (ms) used as the right edge while the cluster is open.
   */
  window.drawTimeline = function (container, view, events, now) {
    var width = Math.max(container.clientWidth || 0, 640);
    var left = 180, right = 60, top = 52, laneH = 56;
    var lanes = view.nodes.map(function (n) { return n.job; });
    var height = top + lanes.length * laneH + 34;
    var t0 = view.created;
    var tEnd = t0;
    events.forEach(function (e) { if (e.at > tEnd) tEnd = e.at; });
    if (!view.final && now > tEnd) tEnd = now;
    var span = Math.max(tEnd - t0, 20) * 1.04;
    var x = function (t) { return left + ((t - t0) / span) * (width - left - right); };
    var laneY = function (job) { return top + lanes.indexOf(job) * laneH + laneH / 2; };

    var svg = el('svg', { width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': 'timeline of cluster ' + view.id });

    // Time axis.
    var axis = el('g', { class: 'axis' }, svg);
    var step = STEPS.find(function (s) { return span / s <= 8; }) || 3600000;
    for (var t = 0; t <= span; t += step) {
      el('line', { x1: x(t0 + t), x2: x(t0 + t), y1: top - 6, y2: height - 28 }, axis);
      text(axis, x(t0 + t), height - 12, '+' + duration(t), { 'text-anchor': 'middle' });
    }

    // Lanes.
    view.nodes.forEach(function (n) {
      var y = laneY(n.job);
      var g = el('g', { class: 'lane', 'data-lane': n.job, 'data-state': n.state || 'submitted' }, svg);
      el('line', { class: 'lane-line', x1: left, x2: width - right, y1: y, y2: y }, g);
      text(g, 12, y - 3, n.job, { class: 'lane-label' });
      text(g, 12, y + 12, n.roles + (n.ip ? '  ' + n.ip : ''), { class: 'lane-roles' });
    });

    // Barrier resolutions: vertical lines across every lane.
    var placed = [];
    events.filter(function (e) { return e.type === 'resolution'; }).forEach(function (e) {
      var bx = x(e.at);
      var stack = placed.filter(function (p) { return Math.abs(p - bx) < 60; }).length;
      placed.push(bx);
      var g = el('g', { class: 'barrier-line result-' + e.result, 'data-barrier': e.barrier, 'data-result': e.result }, svg);
      el('line', { x1: bx, x2: bx, y1: top - 8 - stack * 14, y2: top + lanes.length * laneH }, g);
      var label = e.barrier + (e.result === 'abort' ? ' ✗ abort' : ' ✓') + (e.took_ms !== undefined ? ' ' + duration(e.took_ms) : '');
      var nearEnd = bx > width - right - 110;
      text(g, nearEnd ? bx - 4 : bx + 4, top - 12 - stack * 14, label, { 'text-anchor': nearEnd ? 'end' : 'start' });
      if (e.reason) el('title', {}, g).textContent = e.reason;
    });

    // Reports: a dot per report on its node's lane, labels alternating above and below when crowded.
    var lastX = {};
    events.filter(function (e) { return e.type === 'report'; }).forEach(function (e) {
      if (lanes.indexOf(e.job) < 0) return;
      var rx = x(e.at), y = laneY(e.job);
      var crowded = lastX[e.job] !== undefined && rx - lastX[e.job].x < 56;
      var below = crowded ? !lastX[e.job].below : false;
      lastX[e.job] = { x: rx, below: below };
      var g = el('g', { class: 'report kind-' + e.report, 'data-job': e.job, 'data-report': e.report, 'data-state': e.state }, svg);
      el('circle', { cx: rx, cy: y, r: e.state === 'abort' ? 7 : 5 }, g);
      text(g, rx, below ? y + 19 : y - 10, (LABEL[e.report] || e.report), { 'text-anchor': 'middle' });
      if (e.state === 'abort' && e.reason) {
        var nearEnd = rx > width - right - 200;
        var short = e.reason.length > 60 ? e.reason.slice(0, 57) + '…' : e.reason;
        text(g, nearEnd ? rx - 10 : rx + 10, y + 4, short, { class: 'abort-note', 'text-anchor': nearEnd ? 'end' : 'start' });
      }
      el('title', {}, g).textContent = e.job + ' ' + e.report + ' at +' + duration(e.at - t0) + (e.reason ? ': ' + e.reason : '');
    });

    container.replaceChildren(svg);
  };
})();
