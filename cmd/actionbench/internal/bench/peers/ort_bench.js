// ort_bench.js: the raw ONNX Runtime peer of `actiond model bench`, run by
// cmd/actionbench with onnxruntime-node from .cache/bench-node.
// Usage: node ort_bench.js MODEL THREADS BATCH ITERATIONS [PROFILE_PREFIX]
// Prints one JSON line {"p50_ms","p90_ms","min_ms"}; with PROFILE_PREFIX it
// also enables ORT's profiler and prints {"profile": FILE} afterwards.
'use strict';
const ort = require('onnxruntime-node');

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pct(sorted, q) {
  const i = Math.round(q * sorted.length) - 1;
  return sorted[Math.max(0, Math.min(i, sorted.length - 1))];
}

async function main() {
  const [model, threads, batch, iterations, profile] = process.argv.slice(2);
  const opts = {
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  };
  if (profile) {
    opts.enableProfiling = true;
    opts.profileFilePrefix = profile;
  }
  const sess = await ort.InferenceSession.create(model, opts);
  const name = sess.inputNames[0];
  const meta = sess.inputMetadata ? sess.inputMetadata[0] : null;
  let dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : Number(batch))) : null;
  if (!dims) throw new Error('no input shape');
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const r = rng(1);
  for (let i = 0; i < n; i++) data[i] = r() * 4 - 2;
  const feeds = { [name]: new ort.Tensor('float32', data, dims) };
  await sess.run(feeds);
  const times = [];
  for (let i = 0; i < Number(iterations); i++) {
    const t = process.hrtime.bigint();
    await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const out = { p50_ms: pct(times, 0.5), p90_ms: pct(times, 0.9), min_ms: times[0] };
  if (profile) out.profile = sess.endProfiling();
  console.log(JSON.stringify(out));
  await sess.release();
}

main().catch((e) => { console.error(e); process.exit(1); });
