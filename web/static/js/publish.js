// /publish.html: camera + microphone to WHIP. Test hook: window.estuary (see below).
import { publish, endpointURL, sendCodecs, StatsMeter, HTTPError, validKey } from './whip.js';
import { $, setStatus, fmtKbps, queryParams, describeMediaError, describeServerError } from './ui.js';

const ui = {
  form: $('form'), server: $('server'), stream: $('stream'), codec: $('codec'), size: $('size'),
  bitrate: $('bitrate'), audio: $('audio'), start: $('start'), stop: $('stop'), preview: $('preview'), status: $('status'),
};

// window.estuary: state ('idle'|'starting'|'live'|'stopped'|'error'), error (text or null), stats
// (StatsMeter summary, refreshed every second), session, media, and start(opts)/stop().
const estuary = (window.estuary = {
  page: 'publish', state: 'idle', error: null, stats: null, session: null, media: null,
  start: (opts) => start(opts), stop: () => stop(),
});

const wanted = ['H264', 'VP8', 'VP9', 'AV1'];
const have = sendCodecs('video');
for (const name of wanted) {
  const o = document.createElement('option');
  o.value = name;
  o.textContent = have.includes(name) ? name : `${name} (not in this browser)`;
  o.disabled = have.length > 0 && !have.includes(name);
  ui.codec.append(o);
}

const q = queryParams();
if (q.stream) ui.stream.value = q.stream;
if (q.server) ui.server.value = q.server;
if (q.codec) ui.codec.value = q.codec.toUpperCase();
if (q.size) ui.size.value = q.size;
if (q.bitrate) ui.bitrate.value = q.bitrate;
if (q.audio) ui.audio.value = q.audio;

let timer = null;
let meter = null;

function state(s, msg) {
  estuary.state = s;
  if (s === 'error') estuary.error = msg;
  $('s-state').textContent = s;
  setStatus(ui.status, s, msg);
  ui.start.disabled = s === 'starting' || s === 'live';
  ui.stop.disabled = !(s === 'starting' || s === 'live');
}

async function start(opts = {}) {
  if (estuary.state === 'starting' || estuary.state === 'live') await stop();
  // What the caller passes shows in the form, so the page always says what it publishes.
  if (opts.stream) ui.stream.value = opts.stream;
  if (opts.codec) ui.codec.value = opts.codec;
  if (opts.server !== undefined) ui.server.value = opts.server;
  const key = ui.stream.value.trim();
  const codec = ui.codec.value;
  const server = ui.server.value;
  const [w, h] = (opts.size || ui.size.value).split('x').map(Number);
  const kbps = Number(opts.bitrate || ui.bitrate.value || 0);
  const raw = (opts.audio || ui.audio.value) === 'raw';
  estuary.error = null;
  if (!validKey(key)) {
    state('error', `The stream key must look like app/stream (letters, digits, _ . -), got "${key}".`);
    return;
  }
  state('starting', 'Asking for the camera and microphone…');
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    state('error', 'This page cannot use the camera here: browsers allow it only over HTTPS or on http://localhost.');
    return;
  }
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: w }, height: { ideal: h }, frameRate: { ideal: 30 } },
      // Voice processing off (?audio=raw) for music and test tones: noise suppression fades steady tones.
      audio: raw ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : { echoCancellation: true, noiseSuppression: true },
    });
  } catch (e) {
    state('error', describeMediaError(e));
    return;
  }
  estuary.media = media;
  ui.preview.srcObject = media;
  const url = endpointURL(server, 'whip', key);
  state('starting', `Connecting to ${url} (${codec})…`);
  try {
    estuary.session = await publish({ url, stream: media, videoCodec: codec, videoBitrate: kbps ? kbps * 1000 : 0 });
  } catch (e) {
    media.getTracks().forEach((t) => t.stop());
    estuary.media = null;
    ui.preview.srcObject = null;
    state('error', e instanceof HTTPError ? describeServerError(e, 'publish') : `Could not publish: ${e.message}`);
    return;
  }
  const pc = estuary.session.pc;
  pc.addEventListener('connectionstatechange', () => {
    if (estuary.session && estuary.session.pc === pc) onConnection(pc.connectionState, key);
  });
  onConnection(pc.connectionState, key);
  showShare(server, key);
  meter = new StatsMeter(pc);
  timer = setInterval(refresh, 1000);
}

function onConnection(cs, key) {
  if (cs === 'connected') state('live', `Live on ${key}.`);
  else if (cs === 'failed') {
    state('error', 'The media connection failed (ICE). A firewall may block UDP; the server may need TURN.');
    stop(); // releases the camera; the error stays on screen
  }
  else if (cs === 'disconnected') state('starting', 'Connection interrupted, waiting for it to come back…');
  else if (cs === 'connecting' || cs === 'new') state('starting', 'Connecting media…');
}

function showShare(server, key) {
  const origin = server ? server.replace(/\/+$/, '') : location.origin;
  const watch = `play.html?stream=${encodeURIComponent(key)}${server ? '&server=' + encodeURIComponent(server) : ''}`;
  $('watch').href = watch;
  $('watch').textContent = new URL(watch, location.href).href;
  $('whep').textContent = `${origin}/whep/${key}`;
  let host = location.hostname;
  try { host = new URL(origin).hostname; } catch (e) { /* keep page host */ }
  $('srsurl').textContent = `webrtc://${host}/${key}`;
  $('share').hidden = false;
}

async function refresh() {
  if (!meter) return;
  let s;
  try {
    s = await meter.sample();
  } catch (e) {
    return;
  }
  estuary.stats = s;
  const v = s.outbound.video || {}, a = s.outbound.audio || {};
  $('s-codec').textContent = [v.codec, a.codec].filter(Boolean).join(' + ') || '–';
  $('s-res').textContent = v.width ? `${v.width}×${v.height}` : '–';
  $('s-fps').textContent = v.fps ? `${v.fps} fps` : '–';
  $('s-vbr').textContent = fmtKbps(v.bitrateKbps);
  $('s-abr').textContent = fmtKbps(a.bitrateKbps);
  $('s-enc').textContent = v.encoder ? v.encoder + (v.limitation && v.limitation !== 'none' ? ` (limited by ${v.limitation})` : '') : '–';
  $('s-rtt').textContent = s.connection.rttMs != null ? `${s.connection.rttMs} ms` : '–';
  $('s-path').textContent = s.connection.localCandidateType ? `${s.connection.localCandidateType} / ${s.connection.protocol}` : '–';
}

async function stop() {
  clearInterval(timer);
  timer = null;
  meter = null;
  const session = estuary.session;
  estuary.session = null;
  if (session) await session.close();
  if (estuary.media) estuary.media.getTracks().forEach((t) => t.stop());
  estuary.media = null;
  ui.preview.srcObject = null;
  if (estuary.state !== 'error') state('stopped', 'Stopped. The server was told (DELETE).');
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  start();
});
ui.stop.addEventListener('click', () => stop());
window.addEventListener('pagehide', () => { if (estuary.session) estuary.session.close(); });
if (q.autostart === '1') start();
