// Actions: the history, filtered by stream, label and time, a page at a
// time, each with its snapshot and a link to its camera at that time.

import { APIError, call, snapshotURL } from './api.js';
import * as live from './live.js';
import { date, dateTime, duration, fill, h, hashParams, labelChip, pct, reasons } from './util.js';

const RANGES = [['1h', 'last hour', 3600], ['6h', 'last 6 hours', 21600], ['24h', 'last 24 hours', 86400],
  ['7d', 'last 7 days', 604800], ['all', 'all kept', 0], ['custom', 'from … to …', 0]];
const PAGE = 25;

// localInput formats a Date for <input type="datetime-local">.
function localInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function actions(main) {
  const params = hashParams();
  const f = {
    stream: params.get('stream') || '', label: params.get('label') || '', range: params.get('range') || '24h',
    from: params.get('from') || '', to: params.get('to') || '', page: params.get('page') || '',
  };
  const tokens = (params.get('prev') || '').split(',').filter(Boolean);

  const streamSel = h('select', { id: 'f-stream', name: 'stream' }, h('option', { value: '' }, 'all streams'));
  const labelSel = h('select', { id: 'f-label', name: 'label' }, h('option', { value: '' }, 'all labels'));
  const rangeSel = h('select', { id: 'f-range', name: 'range' }, RANGES.map(([v, text]) => h('option', { value: v, selected: v === f.range }, text)));
  const from = h('input', { id: 'f-from', name: 'from', type: 'datetime-local', value: f.from });
  const to = h('input', { id: 'f-to', name: 'to', type: 'datetime-local', value: f.to });
  const custom = h('span', { class: 'custom-range', hidden: f.range !== 'custom' },
    h('label', { for: 'f-from' }, 'From'), from, h('label', { for: 'f-to' }, 'to'), to);
  rangeSel.addEventListener('change', () => {
    custom.hidden = rangeSel.value !== 'custom';
    if (!custom.hidden && !from.value) from.value = localInput(new Date(Date.now() - 3600e3));
  });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter actions' },
    h('label', { for: 'f-stream' }, 'Stream'), streamSel,
    h('label', { for: 'f-label' }, 'Label'), labelSel,
    h('label', { for: 'f-range' }, 'Started'), rangeSel, custom,
    h('button', { type: 'submit', class: 'primary' }, 'Show'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (streamSel.value) q.set('stream', streamSel.value);
    if (labelSel.value) q.set('label', labelSel.value);
    q.set('range', rangeSel.value);
    if (rangeSel.value === 'custom') { q.set('from', from.value); if (to.value) q.set('to', to.value); }
    location.hash = '#/actions?' + q;
  });
  const status = h('p', { class: 'muted small', role: 'status' });
  const list = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Actions')), form, status, list, pager);

  function fillSelects() {
    const names = [...live.streams.keys()].sort();
    if (f.stream && !names.includes(f.stream)) names.push(f.stream);
    fill(streamSel, h('option', { value: '' }, 'all streams'), names.map((n) => h('option', { value: n, selected: n === f.stream }, n)));
    const labels = [...(live.model?.labels || [])];
    if (f.label && !labels.includes(f.label)) labels.push(f.label);
    fill(labelSel, h('option', { value: '' }, 'all labels'), labels.map((l) => h('option', { value: l, selected: l === f.label }, l)));
  }

  function pageLink(token, prev) {
    const q = hashParams();
    if (token) q.set('page', token); else q.delete('page');
    if (prev.length) q.set('prev', prev.join(',')); else q.delete('prev');
    return '#/actions?' + q;
  }

  let stopped = false;
  async function load() {
    const req = { pageSize: PAGE };
    if (f.stream) req.streams = [f.stream];
    if (f.label) req.labels = [f.label];
    const range = RANGES.find(([v]) => v === f.range);
    if (range && range[2]) req.startTime = new Date(Date.now() - range[2] * 1000).toISOString();
    if (f.range === 'custom') {
      if (f.from) req.startTime = new Date(f.from).toISOString();
      if (f.to) req.endTime = new Date(f.to).toISOString();
    }
    if (f.page) req.pageToken = f.page;
    status.textContent = 'Loading…';
    let resp;
    try {
      resp = await call('HistoryService', 'ListActions', req);
    } catch (e) {
      if (!(e instanceof APIError)) throw e;
      status.textContent = e.code === 'unimplemented'
        ? 'This server keeps no history (no event log).' : `Cannot list actions: ${e.message}`;
      return;
    }
    if (stopped) return;
    const rows = resp.actions || [];
    status.textContent = rows.length ? `${rows.length} action${rows.length === 1 ? '' : 's'}, newest first${tokens.length ? ` (page ${tokens.length + 1})` : ''}.` : 'No action matches.';
    list.replaceChildren(rows.length ? h('table', { class: 'data actions' },
      h('thead', {}, h('tr', {}, h('th', {}, h('span', { class: 'sr-only' }, 'Snapshot')), h('th', {}, 'Label'), h('th', {}, 'Stream'),
        h('th', {}, 'Started'), h('th', { class: 'num' }, 'Lasted'), h('th', { class: 'num' }, 'Peak'), h('th', {}, 'Ended by'), h('th', {}, h('span', { class: 'sr-only' }, 'Timeline')))),
      h('tbody', {}, rows.map(row))) : '');
    pager.replaceChildren(
      tokens.length ? h('a', { class: 'button', href: pageLink(tokens[tokens.length - 1] === '-' ? '' : tokens[tokens.length - 1], tokens.slice(0, -1)), rel: 'prev' }, '← Newer') : '',
      resp.nextPageToken ? h('a', { class: 'button', href: pageLink(resp.nextPageToken, [...tokens, f.page || '-']), rel: 'next' }, 'Older →') : '');
  }

  function row(a) {
    const start = date(a.startTime);
    const end = a.open ? new Date() : date(a.endTime);
    const thumb = h('span', { class: 'thumb' });
    if (a.hasSnapshot) {
      snapshotURL(a.actionId).then((url) => {
        if (url) thumb.replaceChildren(h('img', { src: url, alt: `${a.label} on ${a.stream}`, loading: 'lazy' }));
      });
    }
    const at = start ? start.getTime() : Date.now();
    return h('tr', { 'data-action': a.actionId },
      h('td', {}, thumb),
      h('td', {}, labelChip(a.label)),
      h('td', {}, a.stream),
      h('td', {}, dateTime(start)),
      h('td', { class: 'num' }, duration((end - start) / 1000)),
      h('td', { class: 'num' }, pct(a.peakScore)),
      h('td', {}, a.open ? h('span', { class: 'badge open' }, 'going on') : (reasons[a.endReason] || '—')),
      h('td', {}, h('a', { href: `#/camera/${encodeURIComponent(a.stream)}?span=15m&at=${at}` }, 'on the timeline')));
  }

  fillSelects();
  load();
  const off = live.on((ev) => { if (!ev) fillSelects(); });
  return () => { stopped = true; off(); };
}
