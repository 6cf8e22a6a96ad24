// fkd-live's page: the picture from /stream.mjpg?plain=1 (frames before drawing), the keypoints
// drawn here from /records, matched by frame index, so a point is never drawn on another frame's
// picture and a page can restyle them (the --fkd-* properties of #view, read at every frame).
// The stream is read with fetch rather than an <img>, because only then are its parts' X-Frame
// headers visible. Everything the server sends is shown with textContent, never parsed as HTML.

const $ = (id) => document.getElementById(id);
const canvas = $("view");
const ctx = canvas.getContext("2d");
const RECORDS_KEPT = 256; // frames of records kept for pictures still on their way
const RECORD_WAIT_MS = 250; // how long a picture waits for its record before it is drawn without

// What is on the canvas now, for scripts and tests: the frame index and the record drawn on it.
const live = { drawn: null, received: 0, shown: 0, paused: false, mirror: false };
window.fkdLive = live;

const records = new Map();
let waiting = null; // a picture that came before its record
const stamps = [];

function setState(text) {
  $("state").textContent = text;
}

// -- records ------------------------------------------------------------------------------------
function connectRecords() {
  const events = new EventSource("records");
  events.onmessage = (event) => {
    const record = JSON.parse(event.data);
    live.received += 1;
    records.set(record.frame, record);
    if (records.size > RECORDS_KEPT) records.delete(records.keys().next().value);
    if (waiting && waiting.frame === record.frame) {
      const picture = waiting;
      waiting = null;
      clearTimeout(picture.timer);
      show(picture.bitmap, picture.frame, record);
    }
  };
  events.onerror = () => setState("records: reconnecting…");
}

// -- the picture: multipart/x-mixed-replace parts, each a JPEG with Content-Length and X-Frame ---
const CRLFCRLF = [13, 10, 13, 10];

function indexOf(bytes, pattern, from = 0) {
  outer: for (let i = from; i <= bytes.length - pattern.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

// The next whole part at the start of `bytes`: {frame, jpeg, end}, or null if more bytes are needed.
function nextPart(bytes) {
  const headEnd = indexOf(bytes, CRLFCRLF);
  if (headEnd < 0) return null;
  const head = new TextDecoder("ascii").decode(bytes.subarray(0, headEnd));
  const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1]);
  const frame = Number(/x-frame:\s*(-?\d+)/i.exec(head)?.[1] ?? -1);
  if (!Number.isFinite(length)) throw new Error("a stream part without Content-Length");
  const start = headEnd + 4;
  if (bytes.length < start + length) return null;
  return { frame, jpeg: bytes.slice(start, start + length), end: start + length };
}

async function readPictures() {
  const response = await fetch("stream.mjpg?plain=1", { cache: "no-store" });
  if (!response.ok) throw new Error(`the stream answered ${response.status}`);
  setState("live");
  const reader = response.body.getReader();
  let bytes = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const joined = new Uint8Array(bytes.length + value.length);
    joined.set(bytes);
    joined.set(value, bytes.length);
    bytes = joined;
    let part;
    while ((part = nextPart(bytes))) {
      bytes = bytes.subarray(part.end);
      // decoding before the next read is the backpressure: a slow page is sent fewer frames
      await arrived(part.frame, await createImageBitmap(new Blob([part.jpeg], { type: "image/jpeg" })));
    }
  }
}

async function arrived(frame, bitmap) {
  const record = records.get(frame);
  if (record) {
    show(bitmap, frame, record);
    return;
  }
  if (waiting) {
    clearTimeout(waiting.timer);
    show(waiting.bitmap, waiting.frame, null);
  }
  waiting = { frame, bitmap, timer: setTimeout(() => {
    if (waiting && waiting.frame === frame) {
      waiting = null;
      show(bitmap, frame, null);
    }
  }, RECORD_WAIT_MS) };
}

// -- drawing -------------------------------------------------------------------------------------
function style(name, fallback) {
  return getComputedStyle(canvas).getPropertyValue(name).trim() || fallback;
}

// The 68 points' contours as [first index, last index, closed loop], in iBUG order: the same
// facts as fkd.model.schema.IBUG68_CONTOURS (tests/test_serve_contours.py checks they agree).
const CONTOURS68 = [[0, 16, false], [17, 21, false], [22, 26, false], [27, 30, false], [31, 35, false],
  [36, 41, true], [42, 47, true], [48, 59, true], [60, 67, true]];

function drawContours(points, x) {
  for (const [first, last, closed] of CONTOURS68) {
    ctx.beginPath();
    for (let i = first; i <= last; i += 1) {
      const [px, py] = points[i];
      if (i === first) ctx.moveTo(x(px), py + 0.5);
      else ctx.lineTo(x(px), py + 0.5);
    }
    if (closed) ctx.closePath();
    ctx.stroke();
  }
}

function show(bitmap, frame, record) {
  if (live.paused) {
    bitmap.close();
    return;
  }
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  const width = canvas.width;
  ctx.save();
  if (live.mirror) {
    ctx.translate(width, 0);
    ctx.scale(-1, 1);
  }
  ctx.drawImage(bitmap, 0, 0);
  ctx.restore();
  bitmap.close();
  // records hold pixel centres of the original frame: pixel i spans [i, i + 1) on the canvas
  const x = (px) => (live.mirror ? width - 1 - px : px) + 0.5;
  const faces = record ? record.faces : [];
  ctx.lineWidth = Number(style("--fkd-box-width", "2"));
  ctx.strokeStyle = style("--fkd-box", "#50c850");
  ctx.fillStyle = style("--fkd-label", "#50c850");
  ctx.font = style("--fkd-font", "14px sans-serif");
  for (const face of faces) {
    const [bx, by, bw, bh] = face.box;
    const left = live.mirror ? width - bx - bw : bx;
    ctx.strokeRect(left, by, bw, bh);
    ctx.fillText(`id ${face.id}`, left, Math.max(14, by - 4));
  }
  const radius = Number(style("--fkd-point-radius", "3"));
  ctx.fillStyle = style("--fkd-point", "#00e5ff");
  ctx.strokeStyle = style("--fkd-point", "#00e5ff");
  ctx.lineWidth = Number(style("--fkd-contour-width", "1.5"));
  for (const face of faces) {
    if (Array.isArray(face.points68)) {  // a 68-point model: its contours, not the 15 dots they give
      drawContours(face.points68, x);
      continue;
    }
    for (const [px, py] of Object.values(face.keypoints)) {
      ctx.beginPath();
      ctx.arc(x(px), py + 0.5, radius, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  live.drawn = { frame, record };
  live.shown += 1;
  canvas.dataset.frame = String(frame);
  $("frame").textContent = String(frame);
  listFaces(faces);
  tick();
}

function listFaces(faces) {
  const rows = faces.map((face) => {
    const row = document.createElement("tr");
    // pose and expression came after the first fields; records without them show dashes
    const pose = face.pose || {};
    const expression = face.expression || {};
    // a mirrored view mirrors the pose as the window does: yaw and roll change sign, pitch does not
    const turn = live.mirror ? -1 : 1;
    const angle = (v, sign) => (typeof v === "number" ? (sign * v).toFixed(1) : "–");
    const share = (v) => (typeof v === "number" ? v.toFixed(2) : "–");
    const texts = [String(face.id), face.score.toFixed(3), angle(pose.yaw, turn), angle(pose.pitch, 1),
      angle(pose.roll, turn),
      share(expression.mouth_open), share(expression.smile), share(expression.brow_raise)];
    for (const text of texts) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  });
  document.querySelector("#faces tbody").replaceChildren(...rows);
}

function tick() {
  const t = performance.now();
  stamps.push(t);
  while (stamps.length > 31) stamps.shift();
  if (stamps.length > 1) $("shown").textContent = ((1000 * (stamps.length - 1)) / (t - stamps[0])).toFixed(1);
}

// -- the server's figures ------------------------------------------------------------------------
async function pollStatus() {
  try {
    const response = await fetch("status", { cache: "no-store" });
    if (response.ok) {
      const status = await response.json();
      $("source").textContent = `${status.source}, ${status.width}x${status.height}`;
      $("fps").textContent = status.fps.toFixed(1);
      $("latency").textContent = status.latency_ms === null ? "–" : status.latency_ms.toFixed(1);
      live.mirror = Boolean(status.mirror);
    }
  } catch {
    setState("the server does not answer; retrying…");
  }
}

function togglePause() {
  live.paused = !live.paused;
  $("pause").textContent = live.paused ? "resume" : "pause";
  setState(live.paused ? "paused" : "live");
}

async function keepReading() {
  for (;;) {
    try {
      await readPictures();
      setState("the stream has ended; retrying…");
    } catch (error) {
      setState(`no picture (${error.message}); retrying…`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

$("pause").addEventListener("click", togglePause);
document.addEventListener("keydown", (event) => {
  if (event.key === " " && event.target === document.body) {
    event.preventDefault();
    togglePause();
  }
});
await pollStatus();
setInterval(pollStatus, 1000);
connectRecords();
keepReading();
