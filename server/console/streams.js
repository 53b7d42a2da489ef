// Streams: add, edit, enable or disable, and remove cameras. The server
// checks every request; its messages are shown at the field they name.

import { APIError, call } from './api.js';
import * as live from './live.js';
import { fill, h, stateBadge } from './util.js';

// The form's fields, by the name the API's messages give them.
const FIELDS = [
  { key: 'name', label: 'Name', type: 'text', hint: 'letters, digits, . - _ (e.g. dock-3)', required: true },
  { key: 'url', label: 'RTSP URL', type: 'text', hint: 'rtsp://user:pass@camera/stream', required: true },
  { key: 'window', label: 'Window (s)', type: 'number', step: '0.001', min: '0', hint: 'default: the model\'s' },
  { key: 'stride', label: 'Stride (s)', type: 'number', step: '0.001', min: '0', hint: 'default: the window\'s slot' },
  { key: 'transport', label: 'Transport', type: 'select', options: [['', 'default'], ['TRANSPORT_AUTO', 'auto'], ['TRANSPORT_TCP', 'TCP'], ['TRANSPORT_UDP', 'UDP']] },
  { key: 'top_k', label: 'Top labels', type: 'number', step: '1', min: '0', hint: 'per window' },
  { key: 'on_threshold', label: 'On threshold', type: 'number', step: '0.01', min: '0', max: '1' },
  { key: 'off_threshold', label: 'Off threshold', type: 'number', step: '0.01', min: '0', max: '1' },
  { key: 'min_consecutive_windows', label: 'Windows in a row', type: 'number', step: '1', min: '0' },
  { key: 'label_allowlist', label: 'Only these labels', type: 'text', hint: 'comma-separated; empty: all' },
];

// fieldOf maps a field the API names ("options.window",
// "options.label_allowlist[2]", "streams[0].url") to one of FIELDS.
function fieldOf(name) {
  const k = name.replace(/^streams\[\d+\]\./, '').replace(/^options\./, '').replace(/\[\d+\]$/, '').replace(/\.labels$/, '');
  return FIELDS.some((f) => f.key === k) ? k : null;
}

// fieldErrors splits an INVALID_ARGUMENT message ("url: must start with
// rtsp://; options.window: must be …") into problems per field.
export function fieldErrors(message) {
  const out = new Map();
  const rest = [];
  for (const part of message.split(/;\s+(?=[a-z_.\[\]0-9]+: )/)) {
    const m = part.match(/^([a-z_.\[\]0-9]+): ([\s\S]*)$/);
    const f = m && fieldOf(m[1]);
    if (f) out.set(f, [...(out.get(f) || []), m[2]]); else rest.push(part);
  }
  return { byField: out, rest };
}

function secondsToDuration(v) {
  return v === '' ? undefined : `${Number(v)}s`;
}

export function streamsPage(main) {
  const table = h('div', { class: 'table-wrap' });
  const formBox = h('section', { class: 'panel', 'aria-labelledby': 'form-title' });
  const msg = h('p', { class: 'muted small', role: 'status' });
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Streams'),
    h('button', { type: 'button', class: 'primary', id: 'add-stream', onclick: () => openForm(null) }, 'Add stream')),
  msg, table, formBox);
  formBox.hidden = true;

  // The table keeps one row per stream and updates its cells in place,
  // so that a button under the pointer or the keyboard's focus stays put
  // while status events arrive.
  const tbody = h('tbody');
  const grid = h('table', { class: 'data streams' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'URL'), h('th', {}, 'State'), h('th', {}, 'Window'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
    tbody);
  const rowsByName = new Map();

  function row(name) {
    const r = {
      url: h('td', { class: 'url' }), state: h('td'), window: h('td'),
      toggle: h('button', { type: 'button', onclick: () => setEnabled(name, !r.enabled) }),
    };
    r.tr = h('tr', { 'data-stream': name },
      h('td', {}, h('a', { href: `#/camera/${encodeURIComponent(name)}` }, name)),
      r.url, r.state, r.window,
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => openForm(live.streams.get(name)?.stream || { name }) }, 'Edit'),
        r.toggle,
        h('button', { type: 'button', class: 'danger', 'data-remove': name, onclick: (e) => remove(name, e.currentTarget) }, 'Remove')));
    rowsByName.set(name, r);
    return r;
  }

  function renderTable() {
    const list = [...live.streams.values()].sort((a, b) => a.stream.name.localeCompare(b.stream.name));
    if (!list.length) { table.replaceChildren(h('p', { class: 'empty' }, 'No streams. Add one to start watching a camera.')); return; }
    if (!grid.isConnected) table.replaceChildren(grid);
    for (const [name, r] of rowsByName) if (!live.streams.has(name)) { r.tr.remove(); rowsByName.delete(name); }
    let before = null;
    for (const s of list.reverse()) {
      const r = rowsByName.get(s.stream.name) || row(s.stream.name);
      const o = s.stream.options || {};
      r.enabled = o.enabled !== false;
      r.url.textContent = s.stream.url || '';
      fill(r.state, stateBadge(s.status), s.status?.lastError && s.status.state !== 'STREAM_STATE_PLAYING' ? h('div', { class: 'last-error small' }, s.status.lastError) : null);
      r.window.textContent = o.window ? `${parseFloat(o.window)} s / ${parseFloat(o.stride)} s` : '';
      r.toggle.textContent = r.enabled ? 'Disable' : 'Enable';
      if (r.tr.nextSibling !== before || r.tr.parentNode !== tbody) tbody.insertBefore(r.tr, before);
      before = r.tr;
    }
  }

  async function refresh() {
    try {
      const list = await call('StreamService', 'ListStreams', { pageSize: 1000 });
      for (const st of list.streams || []) {
        const s = live.streams.get(st.name);
        if (s) { s.stream = st; s.status = st.status || s.status; } else live.streams.set(st.name, { stream: st, status: st.status || {}, windows: [], open: new Map(), recent: new Map() });
      }
      const names = new Set((list.streams || []).map((s) => s.name));
      for (const n of [...live.streams.keys()]) if (!names.has(n)) live.streams.delete(n);
    } catch (e) {
      if (!(e instanceof APIError)) throw e;
      msg.textContent = e.message;
    }
    renderTable();
  }

  async function setEnabled(name, enabled) {
    try {
      await call('StreamService', 'UpdateStream', { name, options: { enabled } });
      msg.textContent = `${name} ${enabled ? 'enabled' : 'disabled'}.`;
    } catch (e) {
      if (!(e instanceof APIError)) throw e;
      msg.textContent = `Cannot change ${name}: ${e.message}`;
    }
    refresh();
  }

  // remove asks first, on the button itself: a second press within a few
  // seconds removes the stream.
  async function remove(name, button) {
    if (!button.dataset.armed) {
      button.dataset.armed = '1';
      button.textContent = `Remove ${name}?`;
      button.classList.add('armed');
      msg.textContent = `Press again to remove ${name}: its open actions end and it is forgotten.`;
      setTimeout(() => {
        if (!button.isConnected) return;
        delete button.dataset.armed;
        button.textContent = 'Remove';
        button.classList.remove('armed');
      }, 5000);
      return;
    }
    try {
      await call('StreamService', 'RemoveStream', { name });
      msg.textContent = `${name} removed.`;
    } catch (e) {
      if (!(e instanceof APIError)) throw e;
      msg.textContent = `Cannot remove ${name}: ${e.message}`;
    }
    refresh();
  }

  function openForm(stream) {
    const editing = !!stream;
    const o = stream?.options || {};
    const values = {
      name: stream?.name || '', url: stream?.url || '',
      window: o.window ? parseFloat(o.window) : '', stride: o.stride ? parseFloat(o.stride) : '',
      transport: o.transport && o.transport !== 'TRANSPORT_UNSPECIFIED' ? o.transport : '',
      top_k: o.topK ?? '', on_threshold: o.onThreshold ?? '', off_threshold: o.offThreshold ?? '',
      min_consecutive_windows: o.minConsecutiveWindows ?? '', label_allowlist: (o.labelAllowlist?.labels || []).join(', '),
    };
    const inputs = {};
    const errors = {};
    const rows = FIELDS.map((f) => {
      const id = `sf-${f.key}`;
      const input = f.type === 'select'
        ? h('select', { id, name: f.key }, f.options.map(([v, t]) => h('option', { value: v, selected: v === values[f.key] }, t)))
        : h('input', { id, name: f.key, type: f.type, step: f.step, min: f.min, max: f.max, value: values[f.key], required: f.required,
          readonly: editing && f.key === 'name', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${id}-err ${id}-hint` });
      inputs[f.key] = input;
      errors[f.key] = h('p', { class: 'field-error', id: `${id}-err` });
      return h('div', { class: 'field field-' + f.key },
        h('label', { for: id }, f.label), input,
        f.hint ? h('p', { class: 'hint', id: `${id}-hint` }, f.hint) : null, errors[f.key]);
    });
    const enabled = h('input', { id: 'sf-enabled', type: 'checkbox', checked: o.enabled !== false });
    const formError = h('p', { class: 'field-error', role: 'alert', id: 'sf-form-error' });
    const form = h('form', { class: 'stream-form', novalidate: true },
      h('div', { class: 'grid' }, rows,
        h('div', { class: 'field field-enabled' }, h('label', { class: 'check' }, enabled, ' Enabled'))),
      formError,
      h('div', { class: 'buttons' },
        h('button', { type: 'submit', class: 'primary' }, editing ? 'Save' : 'Add stream'),
        h('button', { type: 'button', onclick: () => { formBox.hidden = true; formBox.replaceChildren(); } }, 'Cancel')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      for (const f of FIELDS) { errors[f.key].textContent = ''; inputs[f.key].removeAttribute('aria-invalid'); }
      formError.textContent = '';
      const v = (k) => inputs[k].value.trim();
      const options = {
        window: secondsToDuration(v('window')), stride: secondsToDuration(v('stride')),
        transport: v('transport') || undefined,
        topK: v('top_k') === '' ? undefined : Number(v('top_k')),
        onThreshold: v('on_threshold') === '' ? undefined : Number(v('on_threshold')),
        offThreshold: v('off_threshold') === '' ? undefined : Number(v('off_threshold')),
        minConsecutiveWindows: v('min_consecutive_windows') === '' ? undefined : Number(v('min_consecutive_windows')),
        enabled: enabled.checked,
      };
      const labels = v('label_allowlist').split(',').map((s) => s.trim()).filter(Boolean);
      if (labels.length || editing) options.labelAllowlist = { labels };
      try {
        if (editing) await call('StreamService', 'UpdateStream', { name: stream.name, url: v('url'), options });
        else await call('StreamService', 'AddStream', { name: v('name'), url: v('url'), options });
      } catch (err) {
        if (!(err instanceof APIError)) throw err;
        const { byField, rest } = err.code === 'invalid_argument' ? fieldErrors(err.message) : { byField: new Map(), rest: [err.message] };
        if (err.code === 'already_exists') byField.set('name', [err.message]);
        let first = null;
        for (const [k, problems] of byField) {
          errors[k].textContent = problems.join('; ');
          inputs[k].setAttribute('aria-invalid', 'true');
          first = first || inputs[k];
        }
        if (err.code === 'already_exists') rest.length = 0;
        formError.textContent = rest.join('; ');
        (first || inputs.name).focus();
        return;
      }
      msg.textContent = editing ? `${stream.name} saved.` : `${v('name')} added.`;
      formBox.hidden = true;
      formBox.replaceChildren();
      refresh();
    });
    formBox.replaceChildren(h('h2', { id: 'form-title' }, editing ? `Edit ${stream.name}` : 'Add a stream'), form);
    formBox.hidden = false;
    (editing ? inputs.url : inputs.name).focus();
  }

  renderTable();
  refresh();
  const off = live.on((ev) => { if (!ev || ev.statuses || ev.streamStatus) renderTable(); });
  return off;
}
