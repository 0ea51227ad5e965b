// HTTP-FLV (mpegts.js) and HLS (hls.js) players for /play.html. Each returns a session with
// sample() (playback figures) and close(). The libraries load on first use from static/vendor/.

const loaded = new Map();

/** Loads a vendor script once; fails when the binary embeds the stand-in instead of the library. */
function loadVendor(file, name, global) {
  if (!loaded.has(file)) {
    loaded.set(file, new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = new URL(`../vendor/${file}`, import.meta.url).href;
      s.onload = () => {
        const missing = (window.estuaryVendorMissing || []).includes(name);
        if (missing || !window[global]) {
          reject(new Error(`${name} is not in this build of Estuary (build it with make to play this format)`));
        } else resolve(window[global]);
      };
      s.onerror = () => reject(new Error(`${name} could not be loaded from ${s.src}`));
      document.head.append(s);
    }));
  }
  return loaded.get(file);
}

/** The URL of a stream's HTTP-FLV or HLS on a server ('' = this page's server). */
export function mediaURL(server, key, ext) {
  const base = (server || '').trim().replace(/\/+$/, '') || location.origin;
  return new URL(`${base}/${key}.${ext}`, location.href).href;
}

/**
 * Playback meter over a <video> element: frames decoded and dropped (getVideoPlaybackQuality), frames
 * per second over the last sample, size and buffered time ahead of playback.
 */
class VideoMeter {
  constructor(video) {
    this.video = video;
    this.last = null;
  }

  sample() {
    const v = this.video;
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    const total = q ? q.totalVideoFrames : (v.webkitDecodedFrameCount || 0);
    const dropped = q ? q.droppedVideoFrames : (v.webkitDroppedFrameCount || 0);
    const now = performance.now();
    let fps = null;
    if (this.last && now > this.last.at) {
      fps = Math.round(((total - this.last.total) * 1000) / (now - this.last.at) * 10) / 10;
    }
    this.last = { at: now, total };
    let bufferMs = null;
    const b = v.buffered;
    if (b && b.length) bufferMs = Math.max(0, Math.round((b.end(b.length - 1) - v.currentTime) * 1000));
    return {
      framesDecoded: total - dropped, framesTotal: total, framesDropped: dropped, fps,
      width: v.videoWidth || null, height: v.videoHeight || null, currentTime: v.currentTime, bufferMs,
    };
  }
}

/**
 * Plays HTTP-FLV with mpegts.js. onFatal(message) is called for an error the player cannot recover
 * from. Latency behind live is the media received but not yet played (the buffer ahead).
 */
export async function playFLV({ video, url, onFatal }) {
  const mpegts = await loadVendor('mpegts.js', 'mpegts.js', 'mpegts');
  if (!mpegts.getFeatureList().mseLivePlayback) throw new Error('this browser cannot play HTTP-FLV (no MediaSource)');
  const player = mpegts.createPlayer({ type: 'flv', isLive: true, url }, {
    enableWorker: false, lazyLoad: false, liveBufferLatencyChasing: true,
    liveBufferLatencyMaxLatency: 1.5, liveBufferLatencyMinRemain: 0.3,
  });
  player.on(mpegts.Events.ERROR, (type, detail, info) => {
    const msg = info && info.msg ? info.msg : '';
    const code = info && info.code ? ` ${info.code}` : '';
    onFatal(`HTTP-FLV player error: ${type} ${detail}${code}${msg ? ': ' + msg : ''}`);
  });
  player.attachMediaElement(video);
  player.load();
  const p = player.play();
  if (p && p.catch) p.catch(() => {});
  const meter = new VideoMeter(video);
  return {
    kind: 'flv',
    player,
    sample() {
      const s = meter.sample();
      s.latencyMs = s.bufferMs;
      return s;
    },
    close() {
      try {
        player.pause();
        player.unload();
        player.detachMediaElement();
        player.destroy();
      } catch (e) { /* already gone */ }
    },
  };
}

/**
 * Plays HLS with hls.js (lowLatency: Low-Latency HLS parts and blocking reloads). Latency behind live
 * is the wall clock minus the program date-time of the frame on screen (the server stamps each frame
 * with the time it arrived), or hls.js's own estimate when the playlist has no date-time.
 */
export async function playHLS({ video, url, lowLatency, onFatal }) {
  const Hls = await loadVendor('hls.min.js', 'hls.js', 'Hls');
  if (!Hls.isSupported()) throw new Error('this browser cannot play HLS with hls.js (no MediaSource)');
  const hls = new Hls({
    lowLatencyMode: !!lowLatency,
    liveSyncDurationCount: lowLatency ? undefined : 2,
    backBufferLength: 10,
    manifestLoadingMaxRetry: 6,
    manifestLoadingRetryDelay: 500,
    levelLoadingMaxRetry: 6,
  });
  let lastError = null;
  hls.on(Hls.Events.ERROR, (_, data) => {
    lastError = `${data.type} ${data.details}`;
    if (data.fatal) {
      const code = data.response && data.response.code ? ` (HTTP ${data.response.code})` : '';
      onFatal(`HLS player error: ${data.type} ${data.details}${code}`);
    }
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    const p = video.play();
    if (p && p.catch) p.catch(() => {});
  });
  const meter = new VideoMeter(video);
  return {
    kind: 'hls',
    player: hls,
    sample() {
      const s = meter.sample();
      const pd = hls.playingDate;
      s.pdtLatencyMs = pd ? Math.round(Date.now() - pd.getTime()) : null;
      s.hlsLatencyMs = Number.isFinite(hls.latency) ? Math.round(hls.latency * 1000) : null;
      s.latencyMs = s.pdtLatencyMs != null ? s.pdtLatencyMs : s.hlsLatencyMs;
      s.lowLatency = !!lowLatency;
      s.lastError = lastError;
      return s;
    },
    close() {
      try {
        hls.destroy();
      } catch (e) { /* already gone */ }
    },
  };
}
