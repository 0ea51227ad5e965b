// /play.html: WHEP player, also webrtc:// URLs through the SRS RTC API; HTTP-FLV (mpegts.js) and HLS
// (hls.js) tabs. Test hook: window.estuary.
import { play, playSRS, endpointURL, StatsMeter, HTTPError, SRSError, validKey } from './whip.js';
import { $, setStatus, fmtKbps, queryParams, describeServerError } from './ui.js';
import { playFLV, playHLS, mediaURL } from './playmedia.js';

const ui = {
  form: $('form'), server: $('server'), stream: $('stream'), start: $('start'), stop: $('stop'),
  unmute: $('unmute'), video: $('video'), status: $('status'), lowlatency: $('lowlatency'), llLabel: $('ll-label'),
};

// window.estuary: state ('idle'|'starting'|'live'|'stopped'|'error'), error, stats (StatsMeter
// summary, every second), via ('whep'|'srs'), url, firstFrameMs (from Play to the first painted
// frame), session (its .stream is the received MediaStream), start(opts)/stop().
// mode: 'webrtc' | 'flv' | 'hls' (opts.mode of start, or ?mode=); with flv/hls, player is the
// mpegts.js / hls.js session and stats is {framesDecoded, framesDropped, framesTotal, fps, width,
// height, latencyMs (behind live), bufferMs, ...} every second; fatal is the player's fatal error.
const estuary = (window.estuary = {
  page: 'play', mode: 'webrtc', state: 'idle', error: null, stats: null, session: null, via: null,
  url: null, firstFrameMs: null, player: null, fatal: null, lowLatency: false,
  start: (opts) => start(opts), stop: () => stop(), setMode: (m) => setMode(m),
});

const placeholders = {
  webrtc: 'app/stream (WHEP on the server above), a WHEP URL, or webrtc://host[:port]/app/stream (SRS API, port 1985 by default)',
  flv: 'app/stream (GET /app/stream.flv on the server above) or an http(s)://…flv URL',
  hls: 'app/stream (GET /app/stream.m3u8 on the server above) or an http(s)://…m3u8 URL',
};

function setMode(m) {
  if (!placeholders[m]) return;
  estuary.mode = m;
  for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.mode === m));
  ui.stream.title = placeholders[m];
  ui.llLabel.hidden = m !== 'hls';
}
for (const b of document.querySelectorAll('.tabs button')) {
  b.addEventListener('click', () => {
    if (b.dataset.mode === estuary.mode) return;
    stop(true).then(() => state('idle', `Type app/stream and press Play (${b.textContent}).`));
    setMode(b.dataset.mode);
  });
}

const q = queryParams();
if (q.stream) ui.stream.value = q.stream;
if (q.url) ui.stream.value = q.url;
if (q.server) ui.server.value = q.server;
if (q.lowlatency === '1') ui.lowlatency.checked = true;
setMode(q.mode || 'webrtc');

let timer = null;
let meter = null;
let generation = 0;

function state(s, msg) {
  estuary.state = s;
  if (s === 'error') estuary.error = msg;
  $('s-state').textContent = s;
  setStatus(ui.status, s, msg);
  ui.start.disabled = s === 'starting';
  ui.stop.disabled = !(s === 'starting' || s === 'live');
}

// Decides how to play what the user typed: webrtc:// -> SRS API, http(s):// -> WHEP URL, app/stream -> WHEP.
function target(input, server) {
  const v = input.trim();
  if (/^webrtc:\/\//i.test(v)) return { via: 'srs', url: v };
  if (/^https?:\/\//i.test(v)) return { via: 'whep', url: v };
  if (!validKey(v)) throw new Error(`Type app/stream, a WHEP URL or webrtc://host[:port]/app/stream, got "${v}".`);
  return { via: 'whep', url: endpointURL(server, 'whep', v) };
}

async function start(opts = {}) {
  await stop(true);
  const gen = ++generation;
  estuary.error = null;
  estuary.firstFrameMs = null;
  estuary.stats = null;
  // What the caller passes shows in the form, so the page always says what it plays.
  if (opts.stream || opts.url) ui.stream.value = opts.stream || opts.url;
  if (opts.server !== undefined) ui.server.value = opts.server;
  if (opts.mode) setMode(opts.mode);
  if (opts.lowLatency !== undefined) ui.lowlatency.checked = !!opts.lowLatency;
  if (estuary.mode !== 'webrtc') {
    await startMedia(gen);
    return;
  }
  let t;
  try {
    t = target(ui.stream.value, ui.server.value);
  } catch (e) {
    state('error', e.message);
    return;
  }
  estuary.via = t.via;
  estuary.url = t.via === 'whep' ? new URL(t.url, location.href).href : t.url;
  $('s-via').textContent = t.via === 'srs' ? 'SRS API (webrtc://)' : 'WHEP';
  state('starting', `Connecting to ${estuary.url}…`);
  const t0 = performance.now();
  let session;
  try {
    session = t.via === 'srs' ? await playSRS({ url: t.url }) : await play({ url: t.url });
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof HTTPError) state('error', describeServerError(e, 'play'));
    else if (e instanceof SRSError) state('error', `The SRS API refused: ${e.message}`);
    else state('error', `Could not play: ${e.message}`);
    return;
  }
  if (gen !== generation) {
    session.close();
    return;
  }
  estuary.session = session;
  ui.video.srcObject = session.stream;
  ui.video.play().catch(() => {});
  ui.unmute.disabled = false;
  const firstFrame = () => {
    if (gen !== generation || estuary.firstFrameMs !== null) return;
    estuary.firstFrameMs = Math.round(performance.now() - t0);
    $('s-ttff').textContent = `${estuary.firstFrameMs} ms`;
  };
  if (ui.video.requestVideoFrameCallback) ui.video.requestVideoFrameCallback(firstFrame);
  else ui.video.addEventListener('playing', firstFrame, { once: true });
  const pc = session.pc;
  const onState = () => {
    if (gen !== generation) return;
    const cs = pc.connectionState;
    if (cs === 'connected') state('live', `Playing ${estuary.url}`);
    else if (cs === 'failed') {
      state('error', 'The media connection failed (ICE), or the server ended the session.');
      stop();
    }
    else if (cs === 'disconnected') state('starting', 'Connection interrupted, waiting for it to come back…');
    else if (cs === 'closed') state('stopped', 'The connection was closed.');
  };
  pc.addEventListener('connectionstatechange', onState);
  onState();
  meter = new StatsMeter(pc);
  timer = setInterval(refresh, 1000);
}

// The URL of an HTTP-FLV or HLS stream from what the user typed.
function mediaTarget(input, server, ext) {
  const v = input.trim();
  if (/^https?:\/\//i.test(v)) return v;
  if (!validKey(v)) throw new Error(`Type app/stream or an http(s):// URL of a .${ext}, got "${v}".`);
  return mediaURL(server, v, ext);
}

// startMedia plays HTTP-FLV (mpegts.js) or HLS (hls.js) in the video element.
async function startMedia(gen) {
  const mode = estuary.mode;
  const ext = mode === 'flv' ? 'flv' : 'm3u8';
  let url;
  try {
    url = mediaTarget(ui.stream.value, ui.server.value, ext);
  } catch (e) {
    state('error', e.message);
    return;
  }
  estuary.url = url;
  estuary.via = mode;
  estuary.fatal = null;
  estuary.lowLatency = mode === 'hls' && ui.lowlatency.checked;
  $('s-via').textContent = mode === 'flv' ? 'HTTP-FLV (mpegts.js)' : (estuary.lowLatency ? 'Low-Latency HLS (hls.js)' : 'HLS (hls.js)');
  state('starting', `Loading ${url}…`);
  // A missing stream answers 404 with the reason: say it before handing the URL to the player.
  try {
    const ctl = new AbortController();
    const resp = await fetch(url, { signal: ctl.signal, cache: 'no-store' });
    const ok = resp.ok;
    if (!ok) {
      const body = (await resp.text()).trim();
      if (gen !== generation) return;
      state('error', describeServerError({ status: resp.status, body }, 'play'));
      return;
    }
    ctl.abort(); // HTTP-FLV never ends: the player makes its own request
  } catch (e) {
    if (gen !== generation) return;
    state('error', `Could not reach ${url}: ${e.message}`);
    return;
  }
  if (gen !== generation) return;
  const t0 = performance.now();
  const onFatal = (msg) => {
    if (gen !== generation) return;
    estuary.fatal = msg;
    state('error', msg);
  };
  let session;
  try {
    const opts = { video: ui.video, url, onFatal, lowLatency: estuary.lowLatency };
    session = mode === 'flv' ? await playFLV(opts) : await playHLS(opts);
  } catch (e) {
    if (gen === generation) state('error', `Could not play: ${e.message}`);
    return;
  }
  if (gen !== generation) {
    session.close();
    return;
  }
  estuary.player = session;
  ui.unmute.disabled = false;
  const firstFrame = () => {
    if (gen !== generation || estuary.firstFrameMs !== null) return;
    estuary.firstFrameMs = Math.round(performance.now() - t0);
    $('s-ttff').textContent = `${estuary.firstFrameMs} ms`;
    if (estuary.state === 'starting') state('live', `Playing ${url}`);
  };
  if (ui.video.requestVideoFrameCallback) ui.video.requestVideoFrameCallback(firstFrame);
  ui.video.addEventListener('playing', firstFrame, { once: true });
  timer = setInterval(refreshMedia, 1000);
}

function refreshMedia() {
  const p = estuary.player;
  if (!p) return;
  const s = p.sample();
  estuary.stats = s;
  $('s-codec').textContent = '–';
  $('s-res').textContent = s.width ? `${s.width}×${s.height}` : '–';
  $('s-fps').textContent = s.fps != null ? `${s.fps} fps` : '–';
  $('s-frames').textContent = String(s.framesDecoded);
  $('s-dropped').textContent = String(s.framesDropped);
  $('s-latency').textContent = s.latencyMs != null ? `${(s.latencyMs / 1000).toFixed(2)} s` : '–';
  $('s-jb').textContent = s.bufferMs != null ? `${s.bufferMs} ms buffered` : '–';
  $('s-vbr').textContent = '–';
  $('s-abr').textContent = '–';
  $('s-lost').textContent = '–';
  $('s-rtt').textContent = '–';
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
  const v = s.inbound.video || {}, a = s.inbound.audio || {};
  $('s-codec').textContent = [v.codec, a.codec].filter(Boolean).join(' + ') || '–';
  $('s-res').textContent = v.width ? `${v.width}×${v.height}` : '–';
  $('s-fps').textContent = v.fps ? `${v.fps} fps` : '–';
  $('s-frames').textContent = v.framesDecoded != null ? String(v.framesDecoded) : '–';
  $('s-vbr').textContent = fmtKbps(v.bitrateKbps);
  $('s-abr').textContent = fmtKbps(a.bitrateKbps);
  $('s-lost').textContent = `${v.packetsLost || 0} video, ${a.packetsLost || 0} audio`;
  $('s-jb').textContent = v.jitterBufferDelayMs ? `${v.jitterBufferDelayMs} ms` : '–';
  $('s-rtt').textContent = s.connection.rttMs != null ? `${s.connection.rttMs} ms` : '–';
}

async function stop(quiet) {
  generation++;
  clearInterval(timer);
  timer = null;
  meter = null;
  const session = estuary.session;
  estuary.session = null;
  const player = estuary.player;
  estuary.player = null;
  if (player) player.close();
  ui.video.srcObject = null;
  if (player) {
    ui.video.removeAttribute('src');
    ui.video.load();
  }
  ui.unmute.disabled = true;
  if (session) await session.close();
  if (!quiet && estuary.state !== 'error') state('stopped', 'Stopped.');
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  start();
});
ui.stop.addEventListener('click', () => stop());
ui.unmute.addEventListener('click', () => {
  ui.video.muted = !ui.video.muted;
  ui.unmute.textContent = ui.video.muted ? 'Unmute' : 'Mute';
  ui.video.play().catch(() => {});
});
window.addEventListener('pagehide', () => {
  if (estuary.session) estuary.session.close();
  if (estuary.player) estuary.player.close();
});
if (q.autoplay === '1') start();
