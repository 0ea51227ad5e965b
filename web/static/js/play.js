// /play.html: WHEP player, also webrtc:// URLs through the SRS RTC API. Test hook: window.estuary.
import { play, playSRS, endpointURL, StatsMeter, HTTPError, SRSError, validKey } from './whip.js';
import { $, setStatus, fmtKbps, queryParams, describeServerError } from './ui.js';

const ui = {
  form: $('form'), server: $('server'), stream: $('stream'), start: $('start'), stop: $('stop'),
  unmute: $('unmute'), video: $('video'), status: $('status'),
};

// window.estuary: state ('idle'|'starting'|'live'|'stopped'|'error'), error, stats (StatsMeter
// summary, every second), via ('whep'|'srs'), url, firstFrameMs (from Play to the first painted
// frame), session (its .stream is the received MediaStream), start(opts)/stop().
const estuary = (window.estuary = {
  page: 'play', mode: 'webrtc', state: 'idle', error: null, stats: null, session: null, via: null,
  url: null, firstFrameMs: null,
  start: (opts) => start(opts), stop: () => stop(),
});

const q = queryParams();
if (q.stream) ui.stream.value = q.stream;
if (q.url) ui.stream.value = q.url;
if (q.server) ui.server.value = q.server;

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
  ui.video.srcObject = null;
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
window.addEventListener('pagehide', () => { if (estuary.session) estuary.session.close(); });
if (q.autoplay === '1') start();
