// /call.html: one-to-one call over Estuary's websocket signaling (GET /ws/call?room=...), media peer
// to peer or through the embedded TURN server. Test hook: window.estuary (see below).
import { StatsMeter } from './whip.js';
import { $, setStatus, fmtKbps, queryParams, describeMediaError } from './ui.js';

const ui = {
  form: $('form'), server: $('server'), room: $('room'), name: $('name'), policy: $('policy'),
  join: $('join'), hangup: $('hangup'), muteAudio: $('mute-audio'), muteVideo: $('mute-video'),
  local: $('local'), remote: $('remote'), status: $('status'), share: $('share'), shareLink: $('share-link'),
};

// window.estuary: state ('idle'|'starting'|'waiting'|'connecting'|'live'|'stopped'|'error'), error,
// id (ours), peer ({id,name} or null), room, iceServers (from "joined"), policy, pc (the current
// RTCPeerConnection), media (local MediaStream), remoteStream, stats (StatsMeter summary every
// second: inbound/outbound bitrate, framesDecoded, connection.rttMs, local/remoteCandidateType),
// events (signaling messages seen, by type), join(opts)/hangup()/mute(kind, muted).
const estuary = (window.estuary = {
  page: 'call', state: 'idle', error: null, id: null, peer: null, room: null, iceServers: null, policy: 'all',
  pc: null, media: null, remoteStream: null, stats: null, events: {}, lastError: null,
  join: (opts) => join(opts), hangup: () => hangup(), mute: (kind, muted) => mute(kind, muted),
});

const q = queryParams();
if (q.room) ui.room.value = q.room;
if (q.name) ui.name.value = q.name;
if (q.server) ui.server.value = q.server;
if (q.policy) ui.policy.value = q.policy;

let ws = null;
let timer = null;
let meter = null;
let pending = []; // remote candidates that arrived before the remote description
let generation = 0;

function state(s, msg) {
  estuary.state = s;
  if (s === 'error') estuary.error = msg;
  $('s-state').textContent = s;
  setStatus(ui.status, s, msg);
  const active = ['starting', 'waiting', 'connecting', 'live'].includes(s);
  ui.join.disabled = active;
  ui.hangup.disabled = !active;
  ui.muteAudio.disabled = !estuary.media;
  ui.muteVideo.disabled = !estuary.media;
}

/** The websocket URL of room on server ("" = this page's server). */
function wsURL(server, room) {
  const base = new URL(server ? (/^[a-z]+:\/\//i.test(server) ? server : `http://${server}`) : location.href);
  const scheme = base.protocol === 'https:' || base.protocol === 'wss:' ? 'wss:' : 'ws:';
  return `${scheme}//${base.host}/ws/call?room=${encodeURIComponent(room)}`;
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

async function join(opts = {}) {
  await hangup(true);
  const gen = ++generation;
  if (opts.room) ui.room.value = opts.room;
  if (opts.name !== undefined) ui.name.value = opts.name;
  if (opts.server !== undefined) ui.server.value = opts.server;
  if (opts.policy) ui.policy.value = opts.policy;
  const room = ui.room.value.trim();
  estuary.error = null;
  estuary.events = {};
  estuary.policy = ui.policy.value === 'relay' ? 'relay' : 'all';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(room)) {
    state('error', `A room name is 1 to 64 letters, digits, _ . or -, got "${room}".`);
    return;
  }
  estuary.room = room;
  state('starting', 'Asking for the camera and microphone…');
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    state('error', 'This page cannot use the camera here: browsers allow it only over HTTPS or on http://localhost.');
    return;
  }
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } },
      audio: { echoCancellation: true, noiseSuppression: true },
    });
  } catch (e) {
    if (gen === generation) state('error', describeMediaError(e));
    return;
  }
  if (gen !== generation) {
    media.getTracks().forEach((t) => t.stop());
    return;
  }
  estuary.media = media;
  ui.local.srcObject = media;
  ui.local.play().catch(() => {});
  const link = new URL(location.href);
  link.search = `?room=${encodeURIComponent(room)}${ui.server.value ? '&server=' + encodeURIComponent(ui.server.value) : ''}`;
  ui.shareLink.href = ui.shareLink.textContent = link.href;
  ui.share.hidden = false;

  state('starting', `Connecting to room ${room}…`);
  let url;
  try {
    url = wsURL(ui.server.value.trim(), room);
  } catch (e) {
    state('error', `Bad server address: ${e.message}`);
    return;
  }
  const sock = new WebSocket(url);
  ws = sock;
  // Handlers at once: an onopen attached late never fires.
  sock.onopen = () => send({ type: 'join', name: ui.name.value.trim() });
  sock.onmessage = (ev) => {
    if (sock !== ws) return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    estuary.events[msg.type] = (estuary.events[msg.type] || 0) + 1;
    onMessage(msg).catch((e) => state('error', `Call setup failed: ${e.message}`));
  };
  sock.onclose = (ev) => {
    if (sock !== ws) return;
    ws = null;
    if (estuary.state === 'error' || estuary.state === 'stopped') return;
    const why = ev.reason ? `${ev.reason} (${ev.code})` : `code ${ev.code}`;
    state('error', `The signaling connection closed: ${why}.`);
    closePC();
  };
  sock.onerror = () => {
    if (sock === ws && estuary.state === 'starting') state('error', `Could not reach the call server at ${url}.`);
  };
}

async function onMessage(msg) {
  switch (msg.type) {
    case 'joined':
      estuary.id = msg.id;
      estuary.iceServers = msg.iceServers || [];
      newPC();
      if (msg.peers && msg.peers.length > 0) {
        // The second joiner makes the offer.
        setPeer(msg.peers[0]);
        state('connecting', `Calling ${peerName()}…`);
        await makeOffer();
      } else {
        state('waiting', `In room ${estuary.room}: waiting for someone to join.`);
      }
      break;
    case 'peer-joined':
      setPeer(msg.peer);
      if (estuary.pc && estuary.pc.remoteDescription) newPC(); // a fresh connection for a new peer
      state('connecting', `${peerName()} joined: connecting…`);
      break;
    case 'offer':
      if (!estuary.pc || estuary.pc.signalingState !== 'stable') newPC();
      await estuary.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await flushCandidates();
      await estuary.pc.setLocalDescription(await estuary.pc.createAnswer());
      send({ type: 'answer', sdp: estuary.pc.localDescription.sdp });
      break;
    case 'answer':
      if (estuary.pc && estuary.pc.signalingState === 'have-local-offer') {
        await estuary.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        await flushCandidates();
      }
      break;
    case 'candidate':
      if (!estuary.pc || !msg.candidate) break;
      if (estuary.pc.remoteDescription) await estuary.pc.addIceCandidate(msg.candidate).catch(() => {});
      else pending.push(msg.candidate);
      break;
    case 'bye':
    case 'peer-left':
      if (estuary.peer && (msg.from === estuary.peer.id || msg.id === estuary.peer.id)) {
        const who = peerName();
        setPeer(null);
        newPC();
        state('waiting', `${who} hung up. Waiting in room ${estuary.room} for someone to join.`);
      }
      break;
    case 'error':
      estuary.lastError = msg;
      if (msg.code === 'room-full') {
        state('error', `Room ${estuary.room} is full: a call has two people. Pick another room.`);
        stopMedia();
      } else {
        console.warn(`call server: ${msg.code}: ${msg.message}`);
      }
      break;
    default:
  }
}

function peerName() {
  return estuary.peer ? estuary.peer.name || estuary.peer.id : 'the other side';
}

function setPeer(p) {
  estuary.peer = p || null;
  $('s-peer').textContent = p ? `${p.name || 'guest'} (${p.id})` : '–';
}

async function flushCandidates() {
  const list = pending;
  pending = [];
  for (const c of list) await estuary.pc.addIceCandidate(c).catch(() => {});
}

/** Replaces the RTCPeerConnection with a fresh one carrying our camera and microphone. */
function newPC() {
  closePC();
  estuary.stats = null;
  const pc = new RTCPeerConnection({ iceServers: estuary.iceServers || [], iceTransportPolicy: estuary.policy });
  estuary.pc = pc;
  pending = [];
  for (const t of estuary.media.getTracks()) pc.addTrack(t, estuary.media);
  const remote = new MediaStream();
  estuary.remoteStream = remote;
  ui.remote.srcObject = remote;
  pc.ontrack = (ev) => {
    remote.addTrack(ev.track);
    ui.remote.play().catch(() => {});
  };
  pc.onicecandidate = (ev) => {
    if (ev.candidate && pc === estuary.pc) send({ type: 'candidate', candidate: ev.candidate.toJSON() });
  };
  pc.onconnectionstatechange = () => {
    if (pc !== estuary.pc) return;
    const cs = pc.connectionState;
    $('s-conn').textContent = cs;
    if (cs === 'connected') state('live', `In a call with ${peerName()} (room ${estuary.room}).`);
    else if (cs === 'disconnected') state('connecting', 'Connection interrupted, waiting for it to come back…');
    else if (cs === 'failed') state('connecting', `The media connection to ${peerName()} failed (ICE): no route${estuary.policy === 'relay' ? ' through the TURN server' : ''}.`);
  };
  $('s-conn').textContent = pc.connectionState;
  meter = new StatsMeter(pc);
  clearInterval(timer);
  timer = setInterval(refresh, 1000);
}

async function makeOffer() {
  const pc = estuary.pc;
  await pc.setLocalDescription(await pc.createOffer());
  send({ type: 'offer', sdp: pc.localDescription.sdp });
}

function closePC() {
  estuary.stats = null;
  clearInterval(timer);
  timer = null;
  meter = null;
  if (estuary.pc) estuary.pc.close();
  estuary.pc = null;
  ui.remote.srcObject = null;
  $('s-conn').textContent = '–';
}

function stopMedia() {
  if (estuary.media) estuary.media.getTracks().forEach((t) => t.stop());
  estuary.media = null;
  ui.local.srcObject = null;
  ui.muteAudio.disabled = ui.muteVideo.disabled = true;
}

async function refresh() {
  const m = meter;
  if (!m) return;
  let s;
  try {
    s = await m.sample();
  } catch (e) {
    return;
  }
  if (m !== meter) return;
  estuary.stats = s;
  const vin = s.inbound.video || {}, ain = s.inbound.audio || {}, vout = s.outbound.video || {}, aout = s.outbound.audio || {};
  const c = s.connection || {};
  $('s-route').textContent = c.localCandidateType ? `${c.localCandidateType} → ${c.remoteCandidateType} (${c.protocol})` : '–';
  $('s-rtt').textContent = c.rttMs != null ? `${c.rttMs} ms` : '–';
  $('s-vout').textContent = vout.codec ? `${fmtKbps(vout.bitrateKbps)} ${vout.codec}` : '–';
  $('s-vin').textContent = vin.codec ? `${fmtKbps(vin.bitrateKbps)} ${vin.codec}` : '–';
  $('s-aout').textContent = fmtKbps(aout.bitrateKbps);
  $('s-ain').textContent = fmtKbps(ain.bitrateKbps);
  $('s-res').textContent = vin.width ? `${vin.width}×${vin.height} at ${vin.fps || 0} fps` : '–';
  $('s-frames').textContent = vin.framesDecoded != null ? String(vin.framesDecoded) : '–';
  $('s-lost').textContent = `${vin.packetsLost || 0} video, ${ain.packetsLost || 0} audio`;
}

async function hangup(quiet) {
  generation++;
  if (ws) {
    send({ type: 'bye' });
    const sock = ws;
    ws = null;
    sock.close(1000, 'hang up');
  }
  closePC();
  stopMedia();
  setPeer(null);
  estuary.id = null;
  ui.share.hidden = true;
  if (!quiet && estuary.state !== 'error') state('stopped', 'Hung up.');
}

function mute(kind, muted) {
  if (!estuary.media) return;
  const tracks = kind === 'audio' ? estuary.media.getAudioTracks() : estuary.media.getVideoTracks();
  const now = muted === undefined ? tracks.some((t) => t.enabled) : muted;
  tracks.forEach((t) => (t.enabled = !now));
  const btn = kind === 'audio' ? ui.muteAudio : ui.muteVideo;
  btn.setAttribute('aria-pressed', String(now));
  btn.textContent = kind === 'audio' ? (now ? 'Unmute mic' : 'Mute mic') : (now ? 'Camera on' : 'Camera off');
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  join();
});
ui.hangup.addEventListener('click', () => hangup());
ui.muteAudio.addEventListener('click', () => mute('audio'));
ui.muteVideo.addEventListener('click', () => mute('video'));
window.addEventListener('pagehide', () => hangup(true));
if (q.autostart === '1' || q.autojoin === '1') join();
