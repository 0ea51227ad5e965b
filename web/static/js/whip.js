// WHIP / WHEP / SRS RTC API client shared by Estuary's pages and by the browser tests.
//
//   import { publish, play, playSRS, StatsMeter } from './whip.js';
//   const s = await publish({ url: 'whip/live/test', stream: media, videoCodec: 'VP8' });
//   ... await s.close();   // DELETEs the WHIP resource and closes the PeerConnection
//
// Offers are sent once ICE gathering completes (no trickle needed on the server). ICE servers
// (STUN/TURN) come from the caller or from the Link headers of an earlier answer on the same origin
// (remembered in localStorage); Link servers learnt in an answer are applied with setConfiguration and
// used by an ICE restart (PATCH, RFC 9725) if the connection fails.

/** An HTTP answer that was not a success: status code and the body text the server sent. */
export class HTTPError extends Error {
  constructor(status, body, url) {
    const text = (body || '').trim();
    super(`HTTP ${status}${text ? ': ' + text : ''}`);
    this.name = 'HTTPError';
    this.status = status;
    this.body = text;
    this.url = url;
  }
}

/** An SRS RTC API answer with a non-zero code. */
export class SRSError extends Error {
  constructor(code, message) {
    super(`SRS API code ${code}${message ? ': ' + message : ''}`);
    this.name = 'SRSError';
    this.code = code;
  }
}

// Splits a header value on commas that are outside <...> and "...".
function splitHeader(value) {
  const out = [];
  let cur = '', inURI = false, inQuote = false;
  for (const ch of value) {
    if (ch === '<' && !inQuote) inURI = true;
    else if (ch === '>' && !inQuote) inURI = false;
    else if (ch === '"' && !inURI) inQuote = !inQuote;
    if (ch === ',' && !inURI && !inQuote) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out;
}

/**
 * Parses Link header values (RFC 8288, as WHIP uses them) into RTCIceServer objects:
 *   <turn:host:3478?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"
 * Links with another rel are ignored. Accepts one string or an array of them.
 */
export function parseLinkHeader(values) {
  const servers = [];
  for (const value of [].concat(values || [])) {
    for (const link of splitHeader(String(value))) {
      const m = /^\s*<([^>]*)>(.*)$/.exec(link);
      if (!m) continue;
      const params = {};
      for (const part of m[2].split(';')) {
        const p = /^\s*([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|([^\s;]*))\s*$/.exec(part);
        if (p) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2] : p[3];
      }
      const rels = (params.rel || '').toLowerCase().split(/\s+/);
      if (!rels.includes('ice-server')) continue;
      const urls = m[1].trim();
      if (!/^(stun|stuns|turn|turns):/i.test(urls)) continue;
      const server = { urls };
      if (params.username !== undefined) server.username = params.username;
      if (params.credential !== undefined) server.credential = params.credential;
      servers.push(server);
    }
  }
  return servers;
}

/**
 * Parses webrtc://host[:port]/app/stream[?query] into its parts and the SRS API URLs
 * ({scheme}://host:{port or 1985}/rtc/v1/play/ and /publish/). The scheme is https when the page is
 * served over https (or the URL says ?schema=https), else http.
 */
export function parseWebRTCURL(url, pageProtocol) {
  const m = /^webrtc:\/\/(\[[^\]]+\]|[^/:?#]+)(?::(\d+))?\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)\/?(\?[^#]*)?$/.exec(String(url || '').trim());
  if (!m) throw new Error(`not a webrtc://host[:port]/app/stream URL: ${url}`);
  const [, host, port, app, stream, query] = m;
  if (app === '..' || stream === '..' || app === '.' || stream === '.') throw new Error(`bad stream key in ${url}`);
  const qs = new URLSearchParams(query || '');
  let scheme = (pageProtocol || (typeof location !== 'undefined' ? location.protocol : 'http:')) === 'https:' ? 'https' : 'http';
  if (qs.get('schema')) scheme = qs.get('schema').replace(/:$/, '');
  const apiPort = port || '1985';
  const base = `${scheme}://${host}:${apiPort}`;
  return {
    host, port: apiPort, app, stream, key: `${app}/${stream}`, query: query || '',
    playAPI: `${base}/rtc/v1/play/`,
    publishAPI: `${base}/rtc/v1/publish/`,
  };
}

/** Validates a stream key `{app}/{stream}` (each part [A-Za-z0-9_.-]+, never . or ..). */
export function validKey(key) {
  const parts = String(key || '').split('/');
  return parts.length === 2 && parts.every((p) => /^[A-Za-z0-9_.-]+$/.test(p) && p !== '.' && p !== '..');
}

/**
 * Builds the WHIP or WHEP endpoint for a key: `${server}/whip/app/stream`; with server '' the URL is
 * relative to the page, so the pages work behind any origin or path prefix.
 */
export function endpointURL(server, kind, key) {
  if (!validKey(key)) throw new Error(`stream key must look like app/stream, got "${key}"`);
  const base = (server || '').trim().replace(/\/+$/, '');
  return base ? `${base}/${kind}/${key}` : `${kind}/${key}`;
}

const iceCacheKey = (url) => {
  try {
    return 'estuary.iceServers:' + new URL(url, location.href).origin;
  } catch (e) {
    return 'estuary.iceServers:';
  }
};

function cachedIceServers(url) {
  try {
    const v = localStorage.getItem(iceCacheKey(url));
    return v ? JSON.parse(v) : [];
  } catch (e) {
    return [];
  }
}

function rememberIceServers(url, servers) {
  try {
    localStorage.setItem(iceCacheKey(url), JSON.stringify(servers));
  } catch (e) { /* storage may be off */ }
}

/** Resolves when ICE gathering completes, or after timeoutMs with what was gathered. */
export function waitGathering(pc, timeoutMs = 2000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** Lists the codecs this browser can send (kind 'video' or 'audio'), as short names (H264, VP8...). */
export function sendCodecs(kind = 'video') {
  const caps = (window.RTCRtpSender && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities(kind)) || { codecs: [] };
  const names = [];
  for (const c of caps.codecs) {
    const n = c.mimeType.split('/')[1];
    if (!['rtx', 'red', 'ulpfec', 'flexfec-03'].includes(n.toLowerCase()) && !names.includes(n)) names.push(n);
  }
  return names;
}

/**
 * Restricts a transceiver to one codec (e.g. 'H264', 'VP8', 'VP9', 'AV1'), keeping the resilience
 * codecs (rtx, red, fec). Throws if the browser cannot send that codec.
 */
export function preferCodec(transceiver, kind, name) {
  if (!name) return;
  const want = `${kind}/${name}`.toLowerCase();
  const source = (window.RTCRtpSender && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities(kind)) || { codecs: [] };
  const chosen = source.codecs.filter((c) => c.mimeType.toLowerCase() === want);
  if (chosen.length === 0) throw new Error(`this browser cannot send ${name}`);
  const extra = source.codecs.filter((c) => /\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType));
  if (kind === 'video' && name.toUpperCase() === 'H264') {
    // Prefer packetization-mode=1 and the constrained baseline profiles every server takes.
    chosen.sort((a, b) => score(b.sdpFmtpLine) - score(a.sdpFmtpLine));
  }
  transceiver.setCodecPreferences([...chosen, ...extra]);
}

function score(fmtp = '') {
  let s = 0;
  if (/packetization-mode=1/.test(fmtp)) s += 2;
  if (/profile-level-id=42e0/i.test(fmtp)) s += 1;
  return s;
}

/** One WHIP/WHEP/SRS session: a PeerConnection and the server resource that DELETE ends. */
export class Session {
  constructor(pc, opts = {}) {
    this.pc = pc;
    this.kind = opts.kind || 'whip';
    this.endpoint = opts.endpoint || '';
    this.resource = null; // absolute URL from Location (WHIP/WHEP)
    this.sessionId = null; // SRS API
    this.iceServers = [];
    this.stream = opts.stream || null;
    this.headers = opts.headers || {};
    this.closed = false;
    this.restarted = false;
    pc.addEventListener('iceconnectionstatechange', () => {
      if (pc.iceConnectionState === 'failed' && this.resource && !this.restarted && !this.closed) {
        this.restarted = true;
        this.restartIce().catch((e) => console.warn('ICE restart failed', e));
      }
    });
  }

  /**
   * Ends the session: DELETE on the resource first (so the server ends it cleanly rather than
   * noticing the transport close), at most 2 s; then closes the PeerConnection. Errors are ignored.
   */
  async close() {
    if (this.closed) return;
    this.closed = true;
    const resource = this.resource;
    if (resource) {
      const ctl = typeof AbortController !== 'undefined' ? new AbortController() : null;
      const timer = ctl ? setTimeout(() => ctl.abort(), 2000) : null;
      try {
        this.deleteStatus = (await fetch(resource, { method: 'DELETE', headers: this.headers, signal: ctl && ctl.signal, keepalive: true })).status;
      } catch (e) {
        this.deleteStatus = 0; // server gone or too slow
      }
      clearTimeout(timer);
    }
    try { this.pc.close(); } catch (e) { /* already closed */ }
  }

  /** ICE restart over PATCH (application/trickle-ice-sdpfrag), with the Link ICE servers if any. */
  async restartIce() {
    const pc = this.pc;
    const offer = await pc.createOffer({ iceRestart: true });
    await pc.setLocalDescription(offer);
    await waitGathering(pc, 3000);
    const local = pc.localDescription.sdp;
    const frag = [];
    const ufrag = /a=ice-ufrag:(\S+)/.exec(local), pwd = /a=ice-pwd:(\S+)/.exec(local);
    if (!ufrag || !pwd) throw new Error('no ICE credentials in the restart offer');
    frag.push(`a=ice-ufrag:${ufrag[1]}`, `a=ice-pwd:${pwd[1]}`);
    const mid = /a=mid:(\S+)/.exec(local);
    frag.push('m=audio 9 RTP/AVP 0', `a=mid:${mid ? mid[1] : '0'}`);
    for (const line of local.split(/\r?\n/)) if (line.startsWith('a=candidate:')) frag.push(line);
    const res = await fetch(this.resource, {
      method: 'PATCH',
      headers: { ...this.headers, 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' },
      body: frag.join('\r\n') + '\r\n',
    });
    if (!res.ok) throw new HTTPError(res.status, await res.text(), this.resource);
    const answerFrag = await res.text();
    const ru = /a=ice-ufrag:(\S+)/.exec(answerFrag), rp = /a=ice-pwd:(\S+)/.exec(answerFrag);
    let remote = pc.remoteDescription.sdp;
    if (ru) remote = remote.replace(/a=ice-ufrag:\S+/g, `a=ice-ufrag:${ru[1]}`);
    if (rp) remote = remote.replace(/a=ice-pwd:\S+/g, `a=ice-pwd:${rp[1]}`);
    const cands = answerFrag.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
    if (cands.length) {
      remote = remote.split(/\r?\n/).filter((l) => !l.startsWith('a=candidate:')).join('\r\n');
      remote = remote.replace(/(m=[^\r\n]*\r\n(?:[^m][^\r\n]*\r\n)*)/g, (sec) => sec + cands.join('\r\n') + '\r\n');
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: remote });
  }
}

/** The ICE servers a new session to url starts with: the caller's, else those an earlier answer's Link headers gave. */
export function iceServersFor(url, iceServers) {
  return iceServers && iceServers.length ? iceServers : cachedIceServers(url);
}

function newPeerConnection(url, iceServers) {
  return new RTCPeerConnection({ iceServers: iceServersFor(url, iceServers), bundlePolicy: 'max-bundle' });
}

// Sends the offer to a WHIP/WHEP endpoint and applies the answer.
async function negotiate(session, url) {
  const pc = session.pc;
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc);
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { ...session.headers, 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
  } catch (e) {
    throw new Error(`cannot reach ${url}: ${e.message}`);
  }
  const body = await res.text();
  if (res.status !== 201 && res.status !== 200) throw new HTTPError(res.status, body, url);
  const loc = res.headers.get('Location');
  if (loc) session.resource = new URL(loc, res.url || new URL(url, location.href)).href;
  const servers = parseLinkHeader(res.headers.get('Link'));
  if (servers.length) {
    session.iceServers = servers;
    rememberIceServers(url, servers);
    try {
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers: servers });
    } catch (e) { /* some browsers refuse changes; the restart path still has them cached */ }
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
}

function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * Publishes a MediaStream over WHIP.
 * opts: url (WHIP endpoint), stream (MediaStream), videoCodec ('H264'|'VP8'|'VP9'|'AV1'|''),
 * videoBitrate (bits/s, optional), iceServers, token.
 */
export async function publish(opts) {
  const { url, stream, videoCodec, videoBitrate, iceServers, token } = opts;
  const pc = newPeerConnection(url, iceServers);
  const session = new Session(pc, { kind: 'whip', endpoint: url, stream, headers: authHeaders(token) });
  try {
    for (const track of stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      if (track.kind === 'video') {
        preferCodec(tr, 'video', videoCodec);
        if (videoBitrate) {
          const p = tr.sender.getParameters();
          p.encodings = p.encodings && p.encodings.length ? p.encodings : [{}];
          p.encodings[0].maxBitrate = videoBitrate;
          await tr.sender.setParameters(p).catch(() => {});
        }
      }
    }
    await negotiate(session, url);
  } catch (e) {
    await session.close();
    throw e;
  }
  return session;
}

function recvPeerConnection(url, iceServers) {
  const pc = newPeerConnection(url, iceServers);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.addEventListener('track', (e) => {
    stream.addTrack(e.track);
  });
  return { pc, stream };
}

/**
 * Plays a stream over WHEP (recvonly video + audio). Returns a Session whose .stream is the
 * MediaStream the tracks arrive on.
 */
export async function play(opts) {
  const { url, iceServers, token } = opts;
  const { pc, stream } = recvPeerConnection(url, iceServers);
  const session = new Session(pc, { kind: 'whep', endpoint: url, stream, headers: authHeaders(token) });
  try {
    await negotiate(session, url);
  } catch (e) {
    await session.close();
    throw e;
  }
  return session;
}

/**
 * Plays a webrtc://host[:port]/app/stream URL through the SRS RTC API (POST /rtc/v1/play/ on the
 * URL's port or 1985), as SRS's own players do.
 */
export async function playSRS(opts) {
  const info = parseWebRTCURL(opts.url);
  const { pc, stream } = recvPeerConnection(info.playAPI, opts.iceServers);
  const session = new Session(pc, { kind: 'srs', endpoint: info.playAPI, stream });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc);
    let res;
    try {
      res = await fetch(info.playAPI, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ api: info.playAPI, streamurl: opts.url.trim(), sdp: pc.localDescription.sdp, clientip: null }),
      });
    } catch (e) {
      throw new Error(`cannot reach ${info.playAPI}: ${e.message}`);
    }
    const text = await res.text();
    let j;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new HTTPError(res.status, text, info.playAPI);
    }
    if (j.code !== 0) throw new SRSError(j.code, j.message || j.msg || j.error || text);
    if (!j.sdp) throw new SRSError(-1, 'answer has no sdp');
    session.sessionId = j.sessionid || null;
    await pc.setRemoteDescription({ type: 'answer', sdp: j.sdp });
  } catch (e) {
    await session.close();
    throw e;
  }
  return session;
}

/**
 * Summarises getStats() into rates between two samples:
 *   { inbound: {video, audio}, outbound: {video, audio}, connection: {...}, timestamp }
 * video: codec, bitrateKbps, fps, width, height, framesDecoded|framesEncoded|framesSent, packetsLost,
 *        jitterBufferDelayMs, framesDropped, nackCount, pliCount, firstFrameAt (ms since start or null)
 * audio: codec, bitrateKbps, packetsLost, jitterBufferDelayMs, totalSamplesReceived
 */
export class StatsMeter {
  constructor(pc) {
    this.pc = pc;
    this.prev = new Map();
  }

  async sample() {
    const report = await this.pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const out = { inbound: {}, outbound: {}, connection: {}, timestamp: Date.now() };
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') return;
      const kind = s.kind || s.mediaType;
      const dir = s.type === 'inbound-rtp' ? 'inbound' : 'outbound';
      const bytes = dir === 'inbound' ? s.bytesReceived : s.bytesSent;
      const prev = this.prev.get(s.id);
      this.prev.set(s.id, { bytes, ts: s.timestamp, frames: s.framesDecoded ?? s.framesEncoded });
      const codec = s.codecId && byId.get(s.codecId);
      const e = {
        codec: codec ? codec.mimeType.split('/')[1] : '',
        bitrateKbps: prev && s.timestamp > prev.ts ? Math.round(((bytes - prev.bytes) * 8) / (s.timestamp - prev.ts)) : 0,
        packets: dir === 'inbound' ? s.packetsReceived || 0 : s.packetsSent || 0,
        packetsLost: s.packetsLost || 0,
        nackCount: s.nackCount || 0,
      };
      if (kind === 'video') {
        Object.assign(e, {
          fps: s.framesPerSecond || 0,
          width: s.frameWidth || 0,
          height: s.frameHeight || 0,
          framesDecoded: s.framesDecoded || 0,
          framesEncoded: s.framesEncoded || 0,
          framesSent: s.framesSent || 0,
          framesDropped: s.framesDropped || 0,
          keyFrames: (s.keyFramesDecoded ?? s.keyFramesEncoded) || 0,
          pliCount: s.pliCount || 0,
          encoder: s.encoderImplementation || '',
          limitation: s.qualityLimitationReason || '',
          decoder: s.decoderImplementation || '',
        });
      } else {
        e.totalSamplesReceived = s.totalSamplesReceived || 0;
      }
      if (dir === 'inbound') {
        e.jitterBufferDelayMs = s.jitterBufferEmittedCount ? Math.round((1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount) : 0;
        e.jitterMs = Math.round(1000 * (s.jitter || 0));
      }
      // With several streams of one kind (simulcast) keep the busiest.
      if (!out[dir][kind] || (e.bitrateKbps > out[dir][kind].bitrateKbps)) out[dir][kind] = e;
    });
    report.forEach((s) => {
      if (s.type !== 'candidate-pair' || !(s.nominated || s.selected) || s.state !== 'succeeded') return;
      const local = byId.get(s.localCandidateId), remote = byId.get(s.remoteCandidateId);
      out.connection = {
        rttMs: s.currentRoundTripTime !== undefined ? Math.round(s.currentRoundTripTime * 1000) : null,
        localCandidateType: local ? local.candidateType : '',
        remoteCandidateType: remote ? remote.candidateType : '',
        protocol: local ? local.protocol : '',
      };
    });
    out.connection.state = this.pc.connectionState;
    out.connection.ice = this.pc.iceConnectionState;
    return out;
  }
}
