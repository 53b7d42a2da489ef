// Camera: the timeline of one stream's actions (a lane per label, spans
// from start to end, open ones growing), the details and snapshot of the
// span under the pointer or the keyboard, and the live window results.

import { APIError, call, snapshotURL } from './api.js';
import * as live from './live.js';
import {
  clock, date, dateTime, duration, fill, h, hashParams, labelChip, labelColor, media, pct, reasons,
  scoreBars, seconds, stateBadge, svg,
} from './util.js';

const SPANS = [['2m', 120], ['5m', 300], ['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400]];
const TICKS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600].map((s) => s * 1000);
const MAX_PAGES = 10;

export function camera(main, name) {
  const params = hashParams();
  const spanKey = SPANS.some(([k]) => k === params.get('span')) ? params.get('span') : '1h';
  const spanMs = SPANS.find(([k]) => k === spanKey)[1] * 1000;
  const at = params.get('at') ? Number(params.get('at')) : null;
  const isLive = at === null || !isFinite(at);
  const endAt = () => (isLive ? Date.now() : at + spanMs / 2);

  const link = (over) => {
    const q = new URLSearchParams({ span: over.span ?? spanKey });
    const a = over.at === undefined ? at : over.at;
    if (a !== null && a !== undefined) q.set('at', String(Math.round(a)));
    return `#/camera/${encodeURIComponent(name)}?${q}`;
  };

  const head = h('div', { class: 'page-head' });
  const zoom = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Time span' },
    SPANS.map(([k]) => h('a', { class: 'button' + (k === spanKey ? ' selected' : ''), href: link({ span: k }), 'aria-current': k === spanKey ? 'true' : null }, k)),
    isLive ? h('span', { class: 'live-dot', title: 'following now' }, 'live')
      : h('a', { class: 'button', href: link({ at: null }) }, 'Back to now'));
  const note = h('p', { class: 'muted small', role: 'status' });
  const tl = h('div', { class: 'timeline', tabindex: '-1' });
  const detail = h('aside', { id: 'detail', class: 'detail', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Point at a span, or tab to one, to see its snapshot and times.'));
  const windowsBox = h('section', { class: 'windows', 'aria-labelledby': 'windows-title' },
    h('h2', { id: 'windows-title' }, 'Live window results'), h('div', { class: 'table-wrap' }));
  main.append(head, zoom, note, h('div', { class: 'timeline-row' }, tl, detail), windowsBox);

  const fetched = new Map(); // actionId -> Action
  let pinned = null;
  let noHistory = false;
  let capped = false;

  function renderHead() {
    const s = live.streams.get(name);
    const st = s?.status || {};
    fill(head,
      h('h1', {}, h('a', { href: '#/cameras', class: 'back', 'aria-label': 'Back to cameras' }, '←'), ' ', name),
      stateBadge(st),
      h('span', { class: 'meta' }, [st.width ? `${st.width}×${st.height}` : '', st.inputFps ? `${Number(st.inputFps).toFixed(1)} fps` : ''].filter(Boolean).join(' · ')));
    if (st.lastError && st.state !== 'STREAM_STATE_PLAYING') head.append(h('p', { class: 'last-error' }, st.lastError));
  }

  function actionsInView() {
    const all = new Map(fetched);
    const s = live.streams.get(name);
    if (s) {
      for (const [id, a] of s.recent) all.set(id, { ...all.get(id), ...a, hasSnapshot: all.get(id)?.hasSnapshot ?? a.hasSnapshot });
      for (const [id, a] of s.open) if (!all.has(id) || all.get(id).open) all.set(id, { ...all.get(id), ...a });
    }
    const end = endAt();
    const start = end - spanMs;
    return [...all.values()].filter((a) => {
      const t0 = date(a.startTime)?.getTime();
      const t1 = a.open ? Date.now() : date(a.endTime)?.getTime() ?? t0;
      return t0 !== undefined && t1 >= start && t0 <= end;
    });
  }

  function lanes(actions) {
    const labels = live.model?.labels || [];
    const seen = new Set(actions.map((a) => a.label));
    if (labels.length && labels.length <= 8) return labels;
    return [...seen].sort();
  }

  function renderTimeline() {
    const actions = actionsInView();
    const labels = lanes(actions);
    const width = Math.max(tl.clientWidth || 800, 300);
    const gutter = width < 500 ? 92 : 120;
    const laneH = 30;
    const axisH = 26;
    const height = Math.max(labels.length, 1) * laneH + axisH;
    const end = endAt();
    const start = end - spanMs;
    const plotW = width - gutter - 8;
    const x = (t) => gutter + ((t - start) / spanMs) * plotW;
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': `Actions of ${name} from ${clock(new Date(start))} to ${clock(new Date(end))}` });
    labels.forEach((label, i) => {
      const y = i * laneH;
      root.append(
        svg('rect', { x: 0, y, width, height: laneH, class: i % 2 ? 'lane odd' : 'lane' }),
        svg('text', { x: 8, y: y + laneH / 2 + 4, class: 'lane-label' }, label),
        svg('rect', { x: 2, y: y + 9, width: 3, height: laneH - 18, fill: labelColor(label), rx: 1 }));
    });
    const step = TICKS.find((t) => plotW / (spanMs / t) >= 90) || TICKS[TICKS.length - 1];
    for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
      const tx = x(t);
      root.append(svg('line', { x1: tx, x2: tx, y1: 0, y2: height - axisH, class: 'tick' }),
        svg('text', { x: tx, y: height - 8, class: 'tick-label', 'text-anchor': 'middle' },
          new Date(t).toLocaleTimeString([], step < 60e3 ? { hour: '2-digit', minute: '2-digit', second: '2-digit' } : { hour: '2-digit', minute: '2-digit' })));
    }
    if (isLive) root.append(svg('line', { x1: x(end), x2: x(end), y1: 0, y2: height - axisH, class: 'now-line' }));
    if (!isLive) root.append(svg('line', { x1: x(at), x2: x(at), y1: 0, y2: height - axisH, class: 'at-line' }));
    actions.sort((a, b) => date(a.startTime) - date(b.startTime));
    for (const a of actions) {
      const lane = labels.indexOf(a.label);
      if (lane < 0) continue;
      const t0 = Math.max(date(a.startTime).getTime(), start);
      const t1 = Math.min(a.open ? Date.now() : date(a.endTime).getTime(), end);
      const r = svg('rect', {
        x: x(t0), y: lane * laneH + 5, width: Math.max(x(t1) - x(t0), 3), height: laneH - 10, rx: 3,
        fill: labelColor(a.label), class: 'span' + (a.open ? ' open' : '') + (pinned === a.actionId ? ' pinned' : ''),
        tabindex: 0, role: 'button', 'data-action': a.actionId, 'data-label': a.label,
        'aria-label': `${a.label} from ${clock(date(a.startTime))}${a.open ? ', still going' : ' to ' + clock(date(a.endTime))}, peak ${pct(a.peakScore)}`,
        onmouseenter: () => { if (!pinned) show(a); },
        onfocus: () => show(a),
        onclick: () => { pinned = pinned === a.actionId ? null : a.actionId; show(a); renderTimeline(); },
        onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pinned = a.actionId; show(a); } },
      });
      root.append(r);
    }
    const focused = document.activeElement?.dataset?.action;
    tl.replaceChildren(root);
    if (focused) tl.querySelector(`[data-action="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
    if (noHistory) note.textContent = 'This server keeps no history: the timeline shows the actions seen since this page was opened.';
    else if (actions.length === 0) note.textContent = 'No actions in this span yet.';
    else note.textContent = `${actions.length} action${actions.length === 1 ? '' : 's'} in the last ${spanKey}${isLive ? '' : ' around ' + dateTime(new Date(at))}${capped ? ` (the newest ${MAX_PAGES * 1000}; zoom in for the rest)` : ''}.`;
  }

  let shown = null;
  async function show(a) {
    const cur = (live.streams.get(name)?.open.get(a.actionId)) || a;
    const same = shown === a.actionId;
    shown = a.actionId;
    const startT = date(cur.startTime);
    const endT = cur.open ? null : date(cur.endTime);
    const ms0 = seconds(cur.mediaStart);
    const ms1 = seconds(cur.mediaEnd);
    const img = same ? detail.querySelector('img') : null;
    const figure = h('figure', { class: 'snapshot' }, img || h('div', { class: 'snapshot-empty' }, 'loading snapshot…'));
    fill(detail,
      figure,
      h('h2', {}, labelChip(cur.label), cur.open ? h('span', { class: 'badge open' }, 'going on') : null),
      h('dl', {},
        h('dt', {}, 'Started'), h('dd', {}, dateTime(startT)),
        h('dt', {}, 'Ended'), h('dd', {}, endT ? dateTime(endT) : '—'),
        h('dt', {}, 'Lasted'), h('dd', {}, duration(((endT || new Date()) - startT) / 1000)),
        h('dt', {}, 'Media time'), h('dd', {}, `${media(ms0)} → ${ms1 === null ? 'now' : media(ms1)}`),
        h('dt', {}, 'Peak score'), h('dd', {}, pct(cur.peakScore)),
        cur.open ? null : [h('dt', {}, 'Ended by'), h('dd', {}, reasons[cur.endReason] || '—')]),
      h('p', { class: 'small' }, h('a', { href: `#/actions?stream=${encodeURIComponent(name)}&label=${encodeURIComponent(cur.label)}` }, `All ${cur.label} actions of ${name}`)));
    if (img) return;
    const url = cur.hasSnapshot === false ? '' : await snapshotURL(cur.actionId);
    if (shown !== a.actionId) return;
    figure.replaceChildren(url
      ? h('img', { src: url, alt: `Snapshot of ${name} when ${cur.label} started`, id: 'snapshot' })
      : h('div', { class: 'snapshot-empty' }, 'no snapshot'));
  }

  function renderWindows() {
    const s = live.streams.get(name);
    const rows = (s?.windows || []).slice(0, 12);
    const wrap = windowsBox.querySelector('.table-wrap');
    if (!rows.length) { wrap.replaceChildren(h('p', { class: 'muted' }, 'Waiting for window results…')); return; }
    wrap.replaceChildren(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Ended'), h('th', {}, 'Media time'), h('th', {}, 'Top labels'), h('th', { class: 'num' }, 'Latency'))),
      h('tbody', {}, rows.map((w) => h('tr', {},
        h('td', {}, clock(date(w.endTime))),
        h('td', {}, `${media(seconds(w.mediaStart))} – ${media(seconds(w.mediaEnd))}`),
        h('td', {}, h('div', { class: 'top-cell' }, scoreBars(w.top, 1),
          h('span', { class: 'runners-up muted small' }, (w.top || []).slice(1, 3).map((l) => `${l.label} ${pct(l.score)}`).join(' · ')))),
        h('td', { class: 'num' }, w.inferenceLatency ? `${(seconds(w.inferenceLatency) * 1000).toFixed(1)} ms` : ''))))));
  }

  let stopped = false;
  async function load() {
    const end = endAt();
    const req = { streams: [name], startTime: new Date(end - spanMs - Math.min(spanMs, 3600e3)).toISOString(), pageSize: 1000 };
    if (!isLive) req.endTime = new Date(end).toISOString();
    try {
      for (let page = 0; page < MAX_PAGES && !stopped; page++) {
        const resp = await call('HistoryService', 'ListActions', req);
        for (const a of resp.actions || []) fetched.set(a.actionId, a);
        if (!resp.nextPageToken) break;
        req.pageToken = resp.nextPageToken;
        capped = page === MAX_PAGES - 1;
      }
      noHistory = false;
    } catch (e) {
      if (!(e instanceof APIError)) throw e;
      if (e.code === 'unimplemented' || e.code === 'not_found') noHistory = true;
      else note.textContent = `Cannot read the history: ${e.message}`;
    }
    if (!stopped) renderTimeline();
  }

  renderHead();
  renderTimeline();
  renderWindows();
  load();
  const off = live.on((ev) => {
    if (!ev) { renderHead(); renderTimeline(); renderWindows(); return; }
    if (ev.statuses) { renderHead(); return; }
    if (ev.stream !== name) return;
    if (ev.streamStatus) renderHead();
    if (ev.windowResult) renderWindows();
    if (ev.actionStarted || ev.actionEnded) {
      renderTimeline();
      if (ev.actionEnded && shown === ev.actionEnded.actionId) {
        const a = live.streams.get(name)?.recent.get(shown);
        if (a) show({ ...fetched.get(shown), ...a });
      }
    }
  });
  // A long span moves slowly: redraw it less often.
  const timer = setInterval(() => { if (isLive) renderTimeline(); }, spanMs <= 3600e3 ? 1000 : 15000);
  const onResize = () => renderTimeline();
  window.addEventListener('resize', onResize);
  return () => { stopped = true; off(); clearInterval(timer); window.removeEventListener('resize', onResize); };
}
