// prefrl labelling page: show two clips in sync, send the answer, show the prefetched next pair.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const token = document.querySelector('meta[name="prefrl-token"]').content ||
    new URLSearchParams(location.search).get("token") || "";
  const probe = document.createElement("video");
  const fmt = probe.canPlayType('video/mp4; codecs="avc1.42E01E"') ? "mp4" : "webm";
  const videos = { left: $("video-left"), right: $("video-right") };
  const KEYS = {
    ArrowLeft: "left", ArrowRight: "right", ArrowUp: "equal", "=": "equal",
    ArrowDown: "skip", s: "skip", S: "skip",
  };
  const timings = (window.prefrlTimings = []); // answer -> next pair shown / playing (ms)

  let current = null; // {pair: {id, left, right}, urls: {left, right}}
  let nextPromise = null; // Promise<prepared | null> for the pair after `current`
  let nextReady = null; // what nextPromise gave, once its videos are downloaded
  let busy = false;
  let shownAt = performance.now();
  let rate = 1;
  let syncRun = 0;
  let pollTimer = null;
  let stopped = false;

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, options = {}) {
    const r = await fetch(path, {
      ...options, cache: "no-store",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    });
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new ApiError(r.status, typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return r.json();
  }

  const videoUrl = (h) => `api/video/${h}.${fmt}?token=${encodeURIComponent(token)}`;

  // Download both videos of a pair (the browser then shows them at once).
  async function prepare(pair) {
    const urls = await Promise.all([pair.left, pair.right].map(async (h) => {
      const r = await fetch(videoUrl(h));
      if (!r.ok) throw new ApiError(r.status, `video ${h}: ${r.statusText}`);
      return URL.createObjectURL(await r.blob());
    }));
    return { pair, urls: { left: urls[0], right: urls[1] } };
  }

  function discard(prepared) {
    if (prepared) Object.values(prepared.urls).forEach((u) => URL.revokeObjectURL(u));
  }

  async function fetchNext(exclude) {
    const q = exclude.map((id) => `exclude=${id}`).join("&");
    const res = await api(`api/next${q ? "?" + q : ""}`);
    updateStatus(res.status);
    return res.query ? prepare(res.query) : null;
  }

  function prefetchAfter(prepared) {
    nextReady = null;
    const p = prepared ? fetchNext([prepared.pair.id]) : null;
    nextPromise = p;
    if (p) p.then((r) => { if (nextPromise === p) nextReady = r; }, () => null);
  }

  // Start both videos from the first frame at the same moment, at the same rate.
  function startTogether(onPlaying) {
    const run = ++syncRun;
    const vs = [videos.left, videos.right];
    const ready = (v) => (v.readyState >= 3 ? Promise.resolve() :
      new Promise((res) => v.addEventListener("canplay", res, { once: true })));
    Promise.all(vs.map(ready)).then(() => {
      if (run !== syncRun) return;
      vs.forEach((v) => { v.pause(); v.currentTime = 0; v.playbackRate = rate; });
      return Promise.all(vs.map((v) => v.play().catch(() => null))).then(() => {
        if (run === syncRun && onPlaying) onPlaying();
      });
    });
  }

  function onEnded() { // restart together once both have finished (clips may differ in length)
    if (videos.left.ended && videos.right.ended) startTogether();
  }

  function onTimeUpdate() { // keep the right video within 0.1 s of the left one
    const [a, b] = [videos.left, videos.right];
    if (!a.paused && !b.paused && Math.abs(a.duration - b.duration) < 0.05 &&
        Math.abs(a.currentTime - b.currentTime) > 0.1) b.currentTime = a.currentTime;
  }

  function show(prepared, t0) {
    current = prepared;
    $("pair").classList.toggle("waiting", !prepared);
    $("empty").hidden = !!prepared;
    document.querySelectorAll(".clip").forEach((f) => { f.hidden = !prepared; f.className = "clip"; });
    setAnswerButtons(!!prepared);
    if (!prepared) {
      document.body.dataset.pairId = "";
      Object.values(videos).forEach((v) => { v.removeAttribute("src"); v.load(); });
      schedulePoll();
      return;
    }
    for (const side of ["left", "right"]) videos[side].src = prepared.urls[side];
    document.body.dataset.pairId = String(prepared.pair.id);
    shownAt = performance.now();
    const entry = t0 === undefined ? null : { shown_ms: shownAt - t0, playing_ms: null };
    if (entry) timings.push(entry);
    startTogether(() => { if (entry) entry.playing_ms = performance.now() - t0; });
  }

  async function advance(t0) {
    let prepared = null;
    if (nextPromise) prepared = await nextPromise.catch(() => null);
    nextPromise = null;
    nextReady = null;
    if (!prepared) prepared = await fetchNext([]);
    const old = current;
    show(prepared, t0);
    if (old && old !== prepared) discard(old);
    prefetchAfter(prepared);
  }

  // With the next pair downloaded, it is shown at once and the answer is sent meanwhile; the
  // pair after it is asked for once the server has the answer (so it is not this one again).
  async function answer(kind) {
    if (busy || !current || stopped) return;
    busy = true;
    const t0 = performance.now();
    const pair = current.pair;
    flash(kind);
    const post = api("api/answer", {
      method: "POST",
      body: JSON.stringify({
        query_id: pair.id, answer: kind, left: pair.left, right: pair.right,
        response_time_s: (t0 - shownAt) / 1000,
      }),
    });
    const ready = nextReady;
    if (ready) {
      const old = current;
      nextPromise = null;
      nextReady = null;
      show(ready, t0);
      discard(old);
    }
    try {
      const res = await post;
      updateStatus(res.status);
      message(runNote());
      if (ready) prefetchAfter(ready); else await advance(t0);
    } catch (e) {
      handleError(e);
      if (ready) {
        if (!(e.status === 409 || e.status === 404) && e.status !== 401) {
          message(`Your answer to the previous pair was not saved (${e.message}); ` +
                  "it will be asked again.", true);
        }
        if (!stopped) prefetchAfter(ready);
      } else if (e.status === 409 || e.status === 404) {
        await advance(t0).catch(handleError);
      }
    } finally {
      busy = false;
    }
  }

  async function undo() {
    if (busy || stopped) return;
    busy = true;
    try {
      const res = await api("api/undo", { method: "POST" });
      updateStatus(res.status);
      if (!res.undone) { message("Nothing to undo."); return; }
      message(`Undid your last answer (${res.undone.answer}). Answer this pair again.`);
      if (res.query) {
        const prepared = await prepare(res.query);
        const pending = nextPromise;
        nextPromise = Promise.resolve(current); // the pair on screen comes back next
        nextReady = current;
        if (pending) pending.then(discard, () => null);
        show(prepared);
      }
    } catch (e) {
      handleError(e);
    } finally {
      busy = false;
    }
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (current || busy || stopped) return;
      try {
        const prepared = await fetchNext([]);
        if (prepared && !current) { show(prepared); prefetchAfter(prepared); } else schedulePoll();
      } catch (e) { handleError(e); schedulePoll(); }
    }, 3000);
  }

  function flash(kind) {
    const btn = document.querySelector(`button[data-answer="${kind}"]`);
    if (btn) { btn.classList.add("pressed"); setTimeout(() => btn.classList.remove("pressed"), 180); }
    const fig = kind === "left" || kind === "right" ? $(`clip-${kind}`) : null;
    if (fig) fig.classList.add("chosen");
  }

  function setAnswerButtons(enabled) {
    document.querySelectorAll("button.ans").forEach((b) => { b.disabled = !enabled; });
  }

  function message(text, isError = false) {
    const m = $("message");
    m.textContent = text;
    m.classList.toggle("error", isError);
  }

  const FINISHED = "The run has finished. Thank you! Your answers are saved; you can close this page.";
  const STOPPED = "The run was stopped; your answers are saved. It can be resumed later.";
  let runState = null; // training | finished | stopped, as the server last said
  let offline = false;
  const runNote = () => (runState === "finished" ? FINISHED : runState === "stopped" ? STOPPED : "");

  function handleError(e) {
    if (e && e.status === 401) {
      stopped = true;
      message("This link is not valid (any more). Ask for a new personal link.", true);
    } else if (e instanceof ApiError) {
      message(`The server could not do that: ${e.message}`, true);
    } else { // a network error: the server is gone (the run ended) or unreachable
      offline = true;
      const note = runNote();
      message(note || "The labelling server cannot be reached: the run may have finished or " +
              "been stopped. Your answers are saved. Retrying…", !note);
    }
  }

  function updateStatus(s) {
    if (!s) return;
    if (offline) { offline = false; message(runNote()); }
    if (s.run !== runState) { runState = s.run; message(runNote()); }
    $("who").textContent = s.annotator;
    $("done").textContent = String(s.labels_done);
    $("queue").textContent = String(s.queue);
    $("rate").textContent = s.labels_per_hour.toFixed(0);
    if (s.env_id) $("env").textContent = s.env_id;
  }

  // ---- statistics -------------------------------------------------------------------------
  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)}%`);

  function table(head, rows) {
    const t = document.createElement("table");
    const tr = t.createTHead().insertRow();
    head.forEach((h) => { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
    const body = t.createTBody();
    rows.forEach((r) => { const row = body.insertRow(); r.forEach((c) => { row.insertCell().textContent = String(c); }); });
    return t;
  }

  function para(text) { const p = document.createElement("p"); p.textContent = text; return p; }

  async function loadStats() {
    const box = $("stats-body");
    try {
      const s = await api("stats");
      box.replaceChildren();
      const t = s.teacher;
      box.appendChild(para(t.available
        ? `Agreement with the true reward (perfect synthetic teacher): ${pct(t.agreement)} of ${t.n} answers.`
        : "No true reward in these clips: agreement with the synthetic teacher is not available."));
      const ia = s.inter_annotator;
      box.appendChild(para(ia.comparisons
        ? `Agreement between annotators: ${pct(ia.agreement)} over ${ia.comparisons} comparisons on ${ia.pairs} pairs.`
        : "Agreement between annotators: no pair has been answered by two people yet."));
      const rows = Object.entries(s.annotators).map(([name, a]) => [
        name, a.labels, a.equal, a.skips, a.labels_per_hour,
        a.median_response_s === null ? "–" : `${a.median_response_s} s`,
        t.by_annotator && t.by_annotator[name] ? pct(t.by_annotator[name].agreement) : "–",
      ]);
      if (rows.length) {
        box.appendChild(table(["annotator", "labels", "equal", "can't tell", "per hour",
          "median time", "vs. true reward"], rows));
      }
      if (ia.by_pair.length) {
        box.appendChild(table(["annotator", "annotator", "shared pairs", "agreement"],
          ia.by_pair.map((p) => [p.a, p.b, p.n, pct(p.agreement)])));
      }
    } catch (e) {
      box.textContent = `Could not load statistics: ${e.message}`;
    }
  }

  // ---- wiring -----------------------------------------------------------------------------
  Object.values(videos).forEach((v) => {
    v.addEventListener("ended", onEnded);
    v.addEventListener("error", () => message("A video could not be played.", true));
  });
  videos.left.addEventListener("timeupdate", onTimeUpdate);

  document.querySelectorAll("button.ans").forEach((b) =>
    b.addEventListener("click", () => { b.blur(); answer(b.dataset.answer); }));
  $("undo").addEventListener("click", () => { $("undo").blur(); undo(); });
  $("speed").addEventListener("change", (e) => {
    rate = parseFloat(e.target.value) || 1;
    Object.values(videos).forEach((v) => { v.playbackRate = rate; });
    e.target.blur();
  });
  $("stats").addEventListener("toggle", (e) => { if (e.target.open) loadStats(); });

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof Element && e.target.closest("input, select, textarea")) return;
    const kind = KEYS[e.key];
    if (kind) {
      e.preventDefault();
      if (!e.repeat) answer(kind);
    } else if (e.key === "u" || e.key === "U" || e.key === "Backspace") {
      e.preventDefault();
      if (!e.repeat) undo();
    }
  });

  setInterval(() => { // cheap; frequent enough to see a run end before its server goes
    if (!stopped) api("api/status").then(updateStatus).catch(handleError);
  }, 3000);

  (async () => {
    try {
      const first = await fetchNext([]);
      show(first);
      prefetchAfter(first);
    } catch (e) {
      handleError(e);
      schedulePoll();
    }
  })();
})();
