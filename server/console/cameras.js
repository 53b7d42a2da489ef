// Cameras: one card per stream with its state, picture, current labels
// and open action, updated live.

import { snapshotURL } from './api.js';
import * as live from './live.js';
import { clock, date, duration, fill, h, labelChip, scoreBars, seconds, stateBadge } from './util.js';

export function cameras(main) {
  const grid = h('div', { class: 'cards', 'aria-live': 'off' });
  const empty = h('p', { class: 'empty' }, 'No cameras yet. ', h('a', { href: '#/streams' }, 'Add a stream'), ' to watch one.');
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Cameras')), grid, empty);
  const cards = new Map();

  function card(name) {
    const c = {
      el: h('article', { class: 'card camera-card', 'aria-labelledby': `cam-${name}` }),
      shot: h('figure', { class: 'card-shot' }, h('div', { class: 'snapshot-empty' }, 'no snapshot yet')),
      badge: h('span'),
      body: h('div', {}),
      shotId: '',
    };
    // The heading and its link stay while the rest is redrawn, so that
    // the keyboard's focus stays on them.
    c.el.append(c.shot,
      h('header', {}, h('h2', { id: `cam-${name}` }, h('a', { href: `#/camera/${encodeURIComponent(name)}` }, name)), c.badge),
      c.body);
    cards.set(name, c);
    return c;
  }

  function update(name) {
    const s = live.streams.get(name);
    if (!s) return;
    const c = cards.get(name) || card(name);
    const st = s.status || {};
    const w = s.windows[0];
    const open = [...s.open.values()];
    const meta = [];
    if (st.width) meta.push(`${st.width}×${st.height}`);
    if (st.inputFps) meta.push(`${Number(st.inputFps).toFixed(1)} fps`);
    if (st.codec) meta.push(st.codec);
    c.el.dataset.stream = name;
    c.el.dataset.state = st.state || '';
    // The picture: the snapshot of the newest action.
    const newest = [...open, ...s.recent.values()].sort((a, b) => new Date(b.startTime) - new Date(a.startTime))[0];
    if (newest && newest.actionId !== c.shotId && newest.hasSnapshot !== false) {
      c.shotId = newest.actionId;
      snapshotURL(newest.actionId).then((url) => {
        if (c.shotId !== newest.actionId) return;
        if (!url) { setTimeout(() => { if (c.shotId === newest.actionId) c.shotId = ''; }, 2000); return; }
        fill(c.shot,
          h('img', { src: url, alt: `${name} when ${newest.label} started` }),
          h('figcaption', {}, `${newest.label} started ${clock(date(newest.startTime))}`));
      });
    }
    fill(c.badge, stateBadge(st));
    fill(c.body,
      st.lastError && st.state !== 'STREAM_STATE_PLAYING'
        ? h('p', { class: 'last-error', role: 'note' }, st.lastError) : null,
      h('p', { class: 'meta' }, meta.join(' · ') || 'no picture yet'),
      h('div', { class: 'now' },
        h('h3', { class: 'sr-label' }, 'Now'),
        w ? scoreBars(w.top, 3) : h('p', { class: 'muted' }, 'waiting for the first window…'),
        w ? h('p', { class: 'muted small' }, `window ${seconds(w.mediaStart).toFixed(1)}–${seconds(w.mediaEnd).toFixed(1)} s · ${clock(date(w.endTime))}`) : null),
      h('div', { class: 'open-actions' },
        open.length === 0
          ? h('p', { class: 'muted' }, 'no action going on')
          : open.map((a) => h('p', { class: 'open-action' },
            labelChip(a.label), ' for ',
            h('span', { class: 'since', dataset: { start: a.startTime || '' } }, duration((Date.now() - date(a.startTime)) / 1000))))),
    );
    if (!c.el.isConnected) {
      const names = [...live.streams.keys()].sort();
      const next = names.slice(names.indexOf(name) + 1).map((n) => cards.get(n)?.el).find((el) => el?.isConnected);
      grid.insertBefore(c.el, next || null);
    }
  }

  function all() {
    for (const [name, c] of cards) if (!live.streams.has(name)) { c.el.remove(); cards.delete(name); }
    for (const name of [...live.streams.keys()].sort()) update(name);
    empty.hidden = live.streams.size > 0;
  }
  all();
  const off = live.on((ev) => {
    if (!ev || ev.statuses) return all();
    if (ev.stream) {
      if (!cards.has(ev.stream)) return all();
      update(ev.stream);
    }
  });
  // Open actions grow by the second.
  const timer = setInterval(() => {
    for (const el of grid.querySelectorAll('.since')) {
      el.textContent = duration((Date.now() - new Date(el.dataset.start)) / 1000);
    }
  }, 1000);
  return () => { off(); clearInterval(timer); };
}
