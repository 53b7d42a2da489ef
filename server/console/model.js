// Model: the manifest the server runs, its labels, and a loud warning
// when the model is untrained.

import { APIError, call } from './api.js';
import { fill, h, labelColor } from './util.js';

const outputs = { OUTPUT_KIND_LOGITS: 'logits (softmax applied by the server)', OUTPUT_KIND_PROBABILITIES: 'probabilities' };

function macs(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GMACs`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MMACs`;
  return `${n.toLocaleString()} MACs`;
}

export function modelPage(main) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Model')), body);
  let stopped = false;
  (async () => {
    let m;
    try {
      m = (await call('RecognitionService', 'GetModel', {})).model || {};
    } catch (e) {
      if (!(e instanceof APIError)) throw e;
      body.replaceChildren(h('p', { class: 'last-error' }, `Cannot read the model: ${e.message}`));
      return;
    }
    if (stopped) return;
    const labels = m.labels || [];
    const row = (k, v) => (v === undefined || v === '' ? null : [h('dt', {}, k), h('dd', {}, v)]);
    fill(body,
      m.untrained ? h('div', { class: 'untrained', role: 'alert' },
        h('strong', {}, 'This model is untrained.'),
        ' Its weights are random: its labels mean nothing. It is for benchmarks and tests only; serve a model built from real weights to recognise actions.') : null,
      h('section', { class: 'panel' },
        h('h2', {}, m.name || 'unnamed model'),
        m.description ? h('p', {}, m.description) : null,
        h('dl', { class: 'manifest' },
          row('Labels', String(labels.length)),
          row('Segments (frames per clip)', m.segments),
          row('Input', m.inputSize ? `${m.inputSize}×${m.inputSize} (short side scaled to ${m.shortSide})` : ''),
          row('Normalisation', m.mean ? `mean ${m.mean.map((x) => x.toFixed(3)).join(', ')} · std ${m.std.map((x) => x.toFixed(3)).join(', ')}` : ''),
          row('Output', outputs[m.output] || m.output),
          row('Default window', m.defaultWindow ? `${parseFloat(m.defaultWindow)} s` : ''),
          row('Parameters', m.params ? Number(m.params).toLocaleString() : ''),
          row('Cost per clip', m.macsPerClip ? macs(Number(m.macsPerClip)) : ''))),
      h('section', { class: 'panel' },
        h('h2', {}, `Labels (${labels.length})`),
        h('ol', { class: 'labels', start: 0 }, labels.map((l) =>
          h('li', {}, h('span', { class: 'swatch', style: { background: labelColor(l) } }), l)))));
  })();
  return () => { stopped = true; };
}
