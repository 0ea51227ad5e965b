// / : links to every page and the live streams from GET /api/v1/streams, refreshed every 2 s.
// Test hook: window.estuary = {page, streams (the API's array), error, updated (Date.now of last success)}.
import { $, setStatus } from './ui.js';

const estuary = (window.estuary = { page: 'index', streams: [], error: null, updated: 0, refresh: () => refresh() });

$('ep-whip').textContent = location.origin;
$('ep-whep').textContent = location.origin;
$('ep-host').textContent = location.hostname;

const text = (v) => (v === undefined || v === null || v === '' ? '–' : String(v));

function videoText(v) {
  if (!v) return '–';
  const size = v.width && v.height ? ` ${v.width}×${v.height}` : '';
  return `${text(v.codec)}${v.profile ? ' ' + v.profile : ''}${size}`;
}

function audioText(a) {
  if (!a) return '–';
  const rate = a.sample_rate ? ` ${a.sample_rate / 1000} kHz` : '';
  const ch = a.channel ? ` ${a.channel === 1 ? 'mono' : a.channel === 2 ? 'stereo' : a.channel + ' ch'}` : '';
  return `${text(a.codec)}${rate}${ch}`;
}

function render(streams) {
  const rows = $('rows');
  rows.replaceChildren();
  if (!streams.length) {
    const tr = rows.insertRow();
    const td = tr.insertCell();
    td.colSpan = 6;
    td.className = 'muted';
    td.textContent = 'No live streams. Publish one from the Publish page, OBS (WHIP) or ffmpeg (RTMP).';
    return;
  }
  for (const s of streams) {
    const key = `${s.app}/${s.name}`;
    const tr = rows.insertRow();
    tr.dataset.key = key;
    tr.insertCell().textContent = key;
    tr.insertCell().textContent = videoText(s.video);
    tr.insertCell().textContent = audioText(s.audio);
    tr.insertCell().textContent = text(s.clients);
    tr.insertCell().textContent = s.kbps && s.kbps.recv_30s ? `${s.kbps.recv_30s} kbit/s` : '–';
    const a = document.createElement('a');
    a.href = `play.html?stream=${encodeURIComponent(key)}&autoplay=1`;
    a.textContent = 'Play';
    tr.insertCell().append(a);
  }
}

async function refresh() {
  const status = $('status');
  try {
    const res = await fetch('api/v1/streams', { cache: 'no-store' });
    const body = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${body.trim() || '(empty body)'}`);
    const j = JSON.parse(body);
    if (j.code !== undefined && j.code !== 0) throw new Error(`API code ${j.code}: ${j.message || ''}`);
    estuary.streams = Array.isArray(j.streams) ? j.streams : [];
    estuary.error = null;
    estuary.updated = Date.now();
    status.hidden = true;
    render(estuary.streams);
    $('updated').textContent = `· updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    estuary.error = `Could not list streams: ${e.message}`;
    setStatus(status, 'error', estuary.error);
    status.hidden = false;
    if (!estuary.updated) $('rows').replaceChildren();
  }
}

refresh();
setInterval(refresh, 2000);
