// The live picture of the server: each stream's status, its latest window
// results and open actions, kept up to date by one Subscribe call. After a
// reconnect the call resumes after the last log position it saw, so nothing
// that happened meanwhile is missed (a laptop that slept catches up).

import { APIError, call, setConnectionState, stream } from './api.js';

export const WINDOWS_KEPT = 40;

// streams: name -> { stream (Stream as ListStreams gives it), status,
// windows: newest first, open: Map actionId -> action, recent: the actions
// seen live, open or ended, for pages that have no history to read }
export const streams = new Map();
export let model = null;

const listeners = new Set();
let lastPosition = 0;
let controller = null;
let retryDelay = 1000;
let retryTimer = null;

// on calls fn(event) for every event, fn(null) when the whole picture was
// reloaded, and fn({statuses: true}) when the streams' counters (fps,
// frames) were read afresh; it returns the function that stops it.
export function on(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(ev) {
  for (const fn of listeners) {
    try { fn(ev); } catch (e) { console.warn('console: a page failed to update', e); }
  }
}

function entry(name) {
  let s = streams.get(name);
  if (!s) {
    s = { stream: { name }, status: {}, windows: [], open: new Map(), recent: new Map() };
    streams.set(name, s);
  }
  return s;
}

// actionFromStarted turns an ActionStarted event into an Action as
// HistoryService gives it.
export function actionFromStarted(streamName, a, position) {
  return {
    actionId: a.actionId, stream: streamName, label: a.label, index: a.index,
    mediaStart: a.mediaStart, startTime: a.startTime, clock: a.clock,
    peakScore: a.peakScore, open: true, startPosition: position,
  };
}

const RECENT_KEPT = 2000;

function actionFromEnded(streamName, e) {
  return {
    actionId: e.actionId, stream: streamName, label: e.label, index: e.index,
    mediaStart: e.mediaStart, mediaEnd: e.mediaEnd, startTime: e.startTime, endTime: e.endTime,
    clock: e.clock, peakScore: e.peakScore, endReason: e.reason, open: false,
  };
}

// progress says how the live picture stands, on <body> (data-position,
// data-resumes, data-gaps) for whoever looks: the header's indicator, the
// browser test. A gap is an event whose log position is not the one after
// the last: something was missed.
const progress = { resumes: 0, gaps: 0 };
function showProgress() {
  const d = document.body.dataset;
  d.position = String(lastPosition);
  d.resumes = String(progress.resumes);
  d.gaps = String(progress.gaps);
}

function apply(ev) {
  const pos = Number(ev.position || 0);
  if (pos > 0) {
    if (lastPosition > 0 && pos !== lastPosition + 1 && pos > lastPosition) progress.gaps++;
    if (pos > lastPosition) lastPosition = pos;
  }
  if (!ev.stream) return;
  const s = entry(ev.stream);
  if (ev.streamStatus) {
    s.status = ev.streamStatus;
    if (ev.streamStatus.state === 'STREAM_STATE_STOPPED') s.open.clear();
  } else if (ev.windowResult) {
    s.windows.unshift(ev.windowResult);
    s.windows.length = Math.min(s.windows.length, WINDOWS_KEPT);
  } else if (ev.actionStarted) {
    const a = actionFromStarted(ev.stream, ev.actionStarted, ev.position);
    s.open.set(a.actionId, a);
    s.recent.set(a.actionId, a);
  } else if (ev.actionEnded) {
    const e = ev.actionEnded;
    s.open.delete(e.actionId);
    s.recent.set(e.actionId, {
      ...(s.recent.get(e.actionId) || {}), ...actionFromEnded(ev.stream, e), endPosition: ev.position,
    });
  }
  for (const k of s.recent.keys()) {
    if (s.recent.size <= RECENT_KEPT) break;
    s.recent.delete(k);
  }
}

// reload reads the streams (and, where the server keeps history, the open
// actions) afresh.
async function reload() {
  const [list, m] = await Promise.all([
    call('StreamService', 'ListStreams', { pageSize: 1000 }),
    call('RecognitionService', 'GetModel', {}),
  ]);
  model = m.model || null;
  const names = new Set();
  for (const st of list.streams || []) {
    names.add(st.name);
    const s = entry(st.name);
    s.stream = st;
    s.status = st.status || {};
  }
  for (const name of [...streams.keys()]) if (!names.has(name)) streams.delete(name);
  try {
    const open = await call('HistoryService', 'ListActions', { pageSize: 200, startTime: new Date(Date.now() - 86400e3).toISOString() });
    for (const s of streams.values()) s.open.clear();
    for (const a of open.actions || []) {
      if (a.open && streams.has(a.stream)) streams.get(a.stream).open.set(a.actionId, a);
    }
  } catch (e) {
    if (!(e instanceof APIError) || e.code === 'unauthenticated') throw e;
    // No history here (no event log): open actions come from live events.
  }
}

// start (re)starts the live picture: after the token prompt, or at load.
export function start() {
  stop();
  controller = new AbortController();
  run(controller.signal);
  // Status events come when a state changes; the counters in between
  // (fps, frames) are read every few seconds.
  const signal = controller.signal;
  const counters = async () => {
    countersTimer = setTimeout(counters, COUNTERS_EVERY);
    if (!connected) return;
    try {
      const list = await call('StreamService', 'ListStreams', { pageSize: 1000 }, { signal });
      for (const st of list.streams || []) {
        const s = streams.get(st.name);
        if (s && st.status) { s.stream = st; s.status = st.status; }
      }
      emit({ statuses: true });
    } catch { /* the Subscribe loop reports the connection */ }
  };
  countersTimer = setTimeout(counters, 1500); // a camera's fps is known a second after it plays
}

const COUNTERS_EVERY = 5000;
let countersTimer = null;
let connected = false;

export function stop() {
  if (controller) controller.abort();
  controller = null;
  connected = false;
  clearTimeout(retryTimer);
  clearTimeout(countersTimer);
}

async function run(signal) {
  let resume = lastPosition > 0;
  for (;;) {
    try {
      if (!resume) {
        await reload();
        emit(null);
      }
      const req = {};
      if (resume && lastPosition > 0) {
        req.resumeAfter = String(lastPosition);
        progress.resumes++;
      } else {
        lastPosition = 0; // a fresh picture: positions start over
      }
      showProgress();
      await stream('RecognitionService', 'Subscribe', req, (msg) => {
        if (msg.event) {
          apply(msg.event);
          emit(msg.event);
          if (!showProgress.pending) {
            showProgress.pending = true;
            setTimeout(() => { showProgress.pending = false; showProgress(); }, 250);
          }
        }
      }, {
        signal,
        onOpen: () => {
          connected = true;
          retryDelay = 1000;
          setConnectionState('ok');
        },
      });
      resume = lastPosition > 0;
    } catch (e) {
      connected = false;
      if (signal.aborted) return;
      if (e instanceof APIError && e.code === 'unauthenticated') return; // the prompt restarts us
      if (e instanceof APIError && e.code === 'out_of_range') {
        resume = false; // older than the log keeps: start afresh
        lastPosition = 0;
        continue;
      }
      resume = lastPosition > 0;
      const retryAt = Date.now() + retryDelay;
      setConnectionState('unreachable', { retryAt, message: e.message });
      await new Promise((r) => { retryTimer = setTimeout(r, retryDelay); });
      retryDelay = Math.min(retryDelay * 2, 10000);
      if (signal.aborted) return;
    }
  }
}
