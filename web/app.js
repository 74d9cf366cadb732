// The reviewer page: cases assigned to the signed-in user, their recordings,
// playback of the access copy, clips, and each item's chain of custody.
// Every value from the server is put in the page as text, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const sections = ['signin', 'cases', 'case', 'item'];
let token = sessionStorage.getItem('custos-token');

function show(name) {
  for (const s of sections) $(s).hidden = s !== name;
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text == null ? '' : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// Reads go with the session cookie (so <video> and <img> work); changes
// carry the bearer token, which the page keeps for this tab only.
async function api(path, opts) {
  opts = opts || {};
  const headers = Object.assign({}, opts.headers || {});
  if (opts.method && opts.method !== 'GET' && token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(path, Object.assign({}, opts, { headers, credentials: 'same-origin' }));
  if (res.status === 401) {
    show('signin');
    throw new Error('not signed in');
  }
  const body = res.headers.get('Content-Type') === 'application/json' ? await res.json() : null;
  if (!res.ok) throw new Error((body && body.detail) || res.statusText);
  return body;
}

async function signIn(t) {
  const res = await fetch('/v1/session', { method: 'POST', headers: { Authorization: 'Bearer ' + t } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || res.statusText);
  token = t;
  sessionStorage.setItem('custos-token', t);
  return body;
}

async function whoami() {
  const me = await api('/v1/session');
  $('who').textContent = (me.user || me.token_id) + ' (' + me.role + ')';
  $('signout').hidden = false;
  return me;
}

async function showCases() {
  const data = await api('/v1/cases?limit=1000');
  const rows = $('case-rows');
  clear(rows);
  for (const c of data.items) {
    const tr = document.createElement('tr');
    tr.className = 'link';
    tr.dataset.case = c.id;
    cell(tr, c.id, 'hash');
    cell(tr, c.title);
    cell(tr, c.status);
    cell(tr, (c.tags || []).join(', '));
    tr.addEventListener('click', () => { location.hash = '#/case/' + encodeURIComponent(c.id); });
    rows.appendChild(tr);
  }
  $('no-cases').hidden = data.items.length > 0;
  show('cases');
}

async function showCase(id) {
  const c = await api('/v1/cases/' + encodeURIComponent(id));
  $('case-title').textContent = c.title;
  $('case-meta').textContent = c.id + ' · ' + c.status + ' · ' + c.evidence_count + ' recording(s)';
  const rows = $('item-rows');
  clear(rows);
  for (const e of c.evidence) {
    const tr = document.createElement('tr');
    tr.className = 'link';
    tr.dataset.item = e.id;
    const td = cell(tr, '');
    const poster = e.renditions && e.renditions.poster;
    const img = document.createElement('img');
    img.className = 'poster';
    img.alt = '';
    img.src = '/v1/evidence/' + e.id + '/content?rendition=poster';
    img.onerror = () => img.remove();
    td.appendChild(img);
    void poster;
    cell(tr, e.recorded_at);
    cell(tr, e.device_id);
    cell(tr, e.officer_id);
    cell(tr, e.filename);
    cell(tr, e.sha256, 'hash');
    tr.addEventListener('click', () => { location.hash = '#/item/' + e.id; });
    rows.appendChild(tr);
  }
  show('case');
}

function fact(dl, name, value) {
  if (value == null || value === '') return;
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = String(value);
  dl.appendChild(dt);
  dl.appendChild(dd);
}

function describe(ev) {
  const skip = new Set(['type', 'at', 'actor', 'evidence']);
  return Object.keys(ev).filter((k) => !skip.has(k) && ev[k] != null && typeof ev[k] !== 'object')
    .map((k) => k + ' ' + String(ev[k]).slice(0, 80)).join(' · ');
}

async function showItem(id) {
  const e = await api('/v1/evidence/' + id);
  $('item-title').textContent = e.filename || e.id;
  const r = e.renditions || {};
  const playable = r.access && r.access.state === 'done' ? 'access' : 'original';
  const player = $('player');
  player.src = '/v1/evidence/' + id + '/content?rendition=' + playable;
  player.dataset.rendition = playable;
  $('player-note').textContent = playable === 'access'
    ? 'Playing the access copy (H.264, scaled for review). Every view is recorded in the ledger.'
    : 'The access copy is not ready (' + (r.access ? r.access.state : 'none') + '): playing the original.';
  const dl = $('item-facts');
  clear(dl);
  fact(dl, 'Evidence id', e.id);
  fact(dl, 'SHA-256', e.sha256);
  fact(dl, 'Size', e.size + ' bytes');
  fact(dl, 'Recorded', e.recorded_at);
  fact(dl, 'Received', e.received_at);
  fact(dl, 'Device', e.device_id);
  fact(dl, 'Officer', e.officer_id);
  fact(dl, 'Cases', (e.cases || []).join(', '));
  if (e.media) fact(dl, 'Media', [e.media.container, e.media.duration_s && e.media.duration_s + ' s'].filter(Boolean).join(', '));
  if (e.retention) fact(dl, 'Retention', e.retention.category + ' (' + e.retention.rule + ')');
  if (e.holds && e.holds.length) fact(dl, 'Legal holds', e.holds.map((h) => h.reason).join('; '));
  if (e.state === 'deleted') fact(dl, 'State', 'deleted');
  const rows = $('rendition-rows');
  clear(rows);
  for (const kind of Object.keys(r).sort()) {
    const tr = document.createElement('tr');
    cell(tr, kind);
    cell(tr, r[kind].state + (r[kind].frame_check ? ' · frames ' + r[kind].frame_check.state : ''));
    cell(tr, r[kind].sha256 || r[kind].reason || r[kind].error || '', 'hash');
    const td = cell(tr, '');
    if (r[kind].state === 'done') {
      const a = document.createElement('a');
      a.href = kind.startsWith('clip:')
        ? clipUrl(id, r[kind].clip.start_s, r[kind].clip.end_s, r[kind].clip.mode === 'exact')
        : '/v1/evidence/' + id + '/content?rendition=' + encodeURIComponent(kind);
      a.textContent = 'download';
      a.setAttribute('download', '');
      td.appendChild(a);
    }
    rows.appendChild(tr);
  }
  const events = await api('/v1/evidence/' + id + '/events');
  const erows = $('event-rows');
  clear(erows);
  for (const x of events.events) {
    const ev = x.event || {};
    const tr = document.createElement('tr');
    cell(tr, x.index);
    cell(tr, ev.at);
    cell(tr, ev.type);
    const who = typeof ev.actor === 'object' && ev.actor ? (ev.actor.user || ev.actor.role) : ev.actor;
    cell(tr, who || 'server');
    cell(tr, describe(ev));
    erows.appendChild(tr);
  }
  $('clip-form').dataset.item = id;
  $('clip-link').hidden = true;
  $('clip-error').textContent = '';
  show('item');
}

function clipUrl(id, start, end, exact) {
  return '/v1/evidence/' + id + '/clip?start=' + encodeURIComponent(start) + '&end=' + encodeURIComponent(end) +
    '&mode=' + (exact ? 'exact' : 'copy');
}

$('clip-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const id = $('clip-form').dataset.item;
  const url = clipUrl(id, $('clip-start').value, $('clip-end').value, $('clip-exact').checked);
  $('clip-error').textContent = 'Making the clip…';
  $('clip-link').hidden = true;
  try {
    const res = await fetch(url, { method: 'HEAD', credentials: 'same-origin' });
    if (!res.ok) {
      const detail = await fetch(url, { credentials: 'same-origin' }).then((r) => r.json()).catch(() => ({}));
      throw new Error(detail.detail || res.statusText);
    }
    $('clip-error').textContent = '';
    const a = $('clip-link');
    a.href = url;
    a.hidden = false;
    $('player').src = url;
    $('player').dataset.rendition = res.headers.get('Custos-Rendition') || 'clip';
  } catch (e) {
    $('clip-error').textContent = e.message;
  }
});

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    await signIn($('token').value.trim());
    $('token').value = '';
    $('signin-error').textContent = '';
    await route();
  } catch (e) {
    $('signin-error').textContent = e.message;
  }
});

$('signout').addEventListener('click', async () => {
  await fetch('/v1/session', { method: 'DELETE', headers: token ? { Authorization: 'Bearer ' + token } : {} });
  sessionStorage.removeItem('custos-token');
  token = null;
  $('who').textContent = '';
  $('signout').hidden = true;
  show('signin');
});

async function route() {
  try {
    await whoami();
  } catch (e) {
    show('signin');
    return;
  }
  const h = location.hash;
  try {
    if (h.startsWith('#/case/')) await showCase(decodeURIComponent(h.slice(7)));
    else if (h.startsWith('#/item/')) await showItem(h.slice(7));
    else await showCases();
  } catch (e) {
    if (e.message !== 'not signed in') alert(e.message);
  }
}

window.addEventListener('hashchange', route);
route();
