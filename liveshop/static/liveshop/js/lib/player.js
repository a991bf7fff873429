// An HLS player on a <video>: hls.js (vendored, loaded the first time something plays)
// where the browser has Media Source Extensions, the browser's own HLS otherwise (iOS).
// It keeps trying while it is asked to play: a playlist that is not there yet (the
// ingest server writes the first fragment a second or two after the host goes on air),
// a dropped connection or a broken fragment all end in a fresh start after a backoff.

const HLS_MODULE = new URL('../../vendor/hls.js/hls.light.min.mjs', import.meta.url).href;

// deploy/nginx-rtmp.conf writes 1 s fragments and a 4 s playlist: start 2 fragments behind
// the live edge, speed up a little to get back there, jump forward past 5.
const HLS_CONFIG = {
  liveSyncDurationCount: 2,
  liveMaxLatencyDurationCount: 5,
  maxLiveSyncPlaybackRate: 1.1,
  backBufferLength: 10,
  // The ESM build has no inlined worker; transmuxing 1 s fragments on the page is cheap.
  enableWorker: false,
};

const RETRY_MS = [500, 1000, 2000, 4000, 8000];
// Failed starts before the player says so (the first ones are the playlist not there yet).
const FAILURES_BEFORE_ERROR = 3;

let hlsModule = null;

function loadHls() {
  hlsModule ??= import(HLS_MODULE).then((module) => module.default).catch((err) => {
    console.warn('hls.js did not load', err);
    hlsModule = null;
    return null;
  });
  return hlsModule;
}

/**
 * play(url) starts playing (again); stop() lets go of the stream.
 * onState(state) hears 'idle' | 'loading' | 'playing' | 'error' | 'unsupported';
 * onLatency(seconds) hears hls.js's estimate of the distance to the live edge.
 * The <video> carries the state in data-state and the latency in data-latency.
 */
export function createPlayer(video, {onState = () => {}, onLatency = () => {}} = {}) {
  let url = '';
  let hls = null;
  let generation = 0; // bumped by every start and stop: late callbacks of an old one are ignored
  let failures = 0;
  let retryTimer = 0;
  let state = 'idle';

  const setState = (next) => {
    if (state === next) return;
    state = next;
    video.dataset.state = next;
    onState(next);
  };

  const release = () => {
    clearTimeout(retryTimer);
    generation += 1;
    if (hls) {
      hls.destroy();
      hls = null;
    }
    if (video.hasAttribute('src')) {
      video.removeAttribute('src');
      video.load();
    }
  };

  const fail = (gen, why) => {
    if (gen !== generation) return;
    console.info('video: retrying after', why);
    failures += 1;
    release();
    setState(failures >= FAILURES_BEFORE_ERROR ? 'error' : 'loading');
    retryTimer = setTimeout(start, RETRY_MS[Math.min(failures, RETRY_MS.length) - 1]);
  };

  async function start() {
    release();
    const gen = generation;
    const Hls = await loadHls();
    if (gen !== generation) return;
    if (Hls && Hls.isSupported()) {
      let mediaRecovered = false;
      hls = new Hls(HLS_CONFIG);
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !mediaRecovered) {
          mediaRecovered = true; // a decoder hiccup: hls.js can rebuild the media pipeline once
          hls.recoverMediaError();
          return;
        }
        fail(gen, data.details);
      });
      hls.on(Hls.Events.FRAG_CHANGED, () => {
        if (gen !== generation || !Number.isFinite(hls.latency)) return;
        video.dataset.latency = hls.latency.toFixed(2);
        onLatency(hls.latency);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = url;
    } else {
      setState('unsupported');
      return;
    }
    video.play().catch(() => {}); // muted autoplay is allowed; otherwise the controls wait for a tap
  }

  video.addEventListener('playing', () => {
    failures = 0;
    if (url) setState('playing');
  });
  video.addEventListener('error', () => {
    // The native player's errors; hls.js reports its own through Hls.Events.ERROR.
    if (!hls && url) fail(generation, 'media error');
  });

  return {
    /** `restart` starts afresh unless it is playing (the publisher is back: no backoff). */
    play(next, {restart = false} = {}) {
      if (next === url && (state === 'playing' || (state === 'loading' && !restart))) return;
      url = next;
      failures = 0;
      setState('loading');
      start();
    },
    stop() {
      url = '';
      release();
      delete video.dataset.latency;
      setState('idle');
    },
    get state() {
      return state;
    },
  };
}
