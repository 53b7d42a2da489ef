// Small helpers every page uses: DOM building, label colours, times.

// h builds an element: h('a', {href: '#/'}, 'text', child).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'style' && typeof v === 'object') {
      for (const [p, pv] of Object.entries(v)) el.style.setProperty(p.replace(/[A-Z]/g, (m) => '-' + m.toLowerCase()), pv);
    }
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

// fill replaces el's children, skipping null and false.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

// labelHue is a label's hue: a hash of its name, so that a label has the
// same colour on every page, after every reload, on every machine.
export function labelHue(label) {
  let x = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < label.length; i++) {
    x ^= label.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return x % 360;
}

export function labelColor(label) {
  return `hsl(${labelHue(label)} 70% 42%)`;
}

export function labelChip(label, extra = '') {
  return h('span', { class: 'chip ' + extra, style: { '--c': labelColor(label) } }, label);
}

// seconds reads a protobuf Duration as JSON gives it ("2.500s").
export function seconds(d) {
  if (d === undefined || d === null || d === '') return null;
  return parseFloat(d);
}

export function date(ts) {
  return ts ? new Date(ts) : null;
}

// duration says how long s seconds are: "3.2 s", "4 min 05 s", "2 h 03 min".
export function duration(s) {
  if (s === null || s === undefined || !isFinite(s)) return '';
  if (s < 0) s = 0;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function clock(d) {
  return d ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';
}

export function dateTime(d) {
  if (!d) return '';
  return d.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function media(s) {
  return s === null ? '' : `${s.toFixed(2)} s`;
}

export function pct(score) {
  return `${Math.round((score || 0) * 100)}%`;
}

export const stateNames = {
  STREAM_STATE_CONNECTING: 'CONNECTING', STREAM_STATE_PLAYING: 'PLAYING', STREAM_STATE_RETRYING: 'RETRYING',
  STREAM_STATE_STOPPED: 'STOPPED', STREAM_STATE_DISABLED: 'DISABLED',
};

export function stateBadge(status) {
  const name = stateNames[status?.state] || 'UNKNOWN';
  return h('span', { class: 'state state-' + name.toLowerCase() }, name);
}

export const reasons = {
  ACTION_END_REASON_SCORE_DROPPED: 'score dropped', ACTION_END_REASON_STREAM_LOST: 'stream lost',
  ACTION_END_REASON_STREAM_REMOVED: 'stream removed', ACTION_END_REASON_SERVER_RESTARTED: 'server restarted',
};

// query reads the page's parameters from the hash (#/page?a=1).
export function hashParams() {
  const q = location.hash.split('?')[1] || '';
  return new URLSearchParams(q);
}

// scoreBars lists labels with their scores as bars.
export function scoreBars(top, n = 3) {
  return h('ul', { class: 'bars' }, (top || []).slice(0, n).map((l) =>
    h('li', {},
      h('span', { class: 'bar-label' }, l.label),
      h('span', { class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 1, 'aria-valuenow': (l.score || 0).toFixed(3), 'aria-label': `${l.label} score` },
        h('span', { class: 'bar-fill', style: { width: pct(l.score), background: labelColor(l.label) } })),
      h('span', { class: 'bar-value' }, pct(l.score)))));
}
