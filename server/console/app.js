// The console: a page per hash route, the token prompt, and the
// "server unreachable" banner. Pages render into <main> and return a
// function that stops their timers and listeners.

import { APIError, call, conn, setConnectionState, setToken } from './api.js';
import * as live from './live.js';
import { cameras } from './cameras.js';
import { camera } from './camera.js';
import { actions } from './actions.js';
import { streamsPage } from './streams.js';
import { modelPage } from './model.js';

const pages = { cameras, camera, actions, streams: streamsPage, model: modelPage };
const main = document.getElementById('main');
const banner = document.getElementById('banner');
const dialog = document.getElementById('token-dialog');
let cleanup = null;

function route() {
  const [path] = location.hash.replace(/^#\/?/, '').split('?');
  const [page, ...rest] = path.split('/');
  return { page: pages[page] ? page : 'cameras', arg: rest.map(decodeURIComponent).join('/') };
}

function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const { page, arg } = route();
  for (const a of document.querySelectorAll('nav a')) {
    const here = a.dataset.page === page || (page === 'camera' && a.dataset.page === 'cameras');
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  main.dataset.page = page;
  cleanup = pages[page](main, arg) || null;
}

// The token prompt: shown whenever a call says unauthenticated; a token
// is kept only once the server takes it.
conn.addEventListener('auth', (e) => {
  live.stop();
  const err = document.getElementById('token-error');
  err.textContent = (localStorage.getItem('actiond.token') || dialog.dataset.tried) ? e.detail.message : '';
  banner.hidden = true;
  if (!dialog.open) dialog.showModal();
  document.getElementById('token-input').focus();
});
document.getElementById('token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = document.getElementById('token-input');
  dialog.dataset.tried = '1';
  setToken(input.value.trim());
  try {
    await call('RecognitionService', 'GetModel', {});
  } catch (err) {
    if (err instanceof APIError && err.code === 'unauthenticated') {
      setToken('');
      input.select();
      return; // the auth event shows the message
    }
  }
  input.value = '';
  dialog.close();
  live.start();
  setConnectionState('ok'); // renders the page afresh
});
dialog.addEventListener('cancel', (e) => e.preventDefault());

// The banner: "server unreachable, retrying in N s".
let countdown = null;
conn.addEventListener('unreachable', (e) => {
  clearInterval(countdown);
  const tick = () => {
    const left = Math.max(0, Math.ceil((e.detail.retryAt - Date.now()) / 1000));
    banner.replaceChildren(
      Object.assign(document.createElement('strong'), { textContent: 'Server unreachable' }),
      ` — retrying ${left > 0 ? `in ${left} s` : 'now'}… The page shows what it knew last.`);
  };
  tick();
  countdown = setInterval(tick, 500);
  banner.className = 'banner banner-error';
  banner.hidden = false;
  document.body.classList.add('offline');
});
conn.addEventListener('ok', (e) => {
  clearInterval(countdown);
  banner.hidden = true;
  document.body.classList.remove('offline');
  if (e.detail.changed) render(); // fetch what pages show afresh
});

window.addEventListener('hashchange', render);
render();
live.start();
