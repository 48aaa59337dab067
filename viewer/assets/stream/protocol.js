// The `control` data channel protocol, browser side (docs/streaming.md; the worker's side is
// domain/src/protocol.rs). Pure helpers: no DOM, no network.

/** Protocol version sent in every message. */
export const VERSION = 1;
/** Label of the data channel. */
export const CHANNEL = "control";
/** The worker refuses text messages larger than this (bytes). */
export const MAX_MESSAGE = 8 * 1024;
/** Bytes of the binary chunk header: "RRLF", frame (u64 BE), chunk index (u32 BE). */
export const CHUNK_HEADER = 16;
const CHUNK_MAGIC = 0x52524c46; // "RRLF"

/** Viewport limits the worker accepts (device pixels, even). */
export const VIEWPORT = { minWidth: 64, maxWidth: 3840, minHeight: 64, maxHeight: 2160, minDpr: 0.5, maxDpr: 4 };

/** Message types that change what is shown (the lossless frame stops being current). */
const CHANGING = new Set(["view", "pointer", "open_case"]);

/** Whether sending `message` may change the picture (a `cine` start does, its stop does not). */
export function changesView(message) {
  if (message && message.type === "cine") return message.step !== 0;
  return CHANGING.has(message && message.type);
}

/**
 * The viewport for a drawing area of `cssWidth` × `cssHeight` CSS pixels at `dpr`: device
 * pixels, even, within the worker's limits. Returns `{ width, height, dpr }`.
 */
export function viewportFor(cssWidth, cssHeight, dpr) {
  const ratio = Math.min(VIEWPORT.maxDpr, Math.max(VIEWPORT.minDpr, Number(dpr) || 1));
  const even = (value, min, max) => {
    const device = Math.floor((Math.max(0, value) * ratio) / 2) * 2;
    return Math.min(max, Math.max(min, device));
  };
  return {
    width: even(cssWidth, VIEWPORT.minWidth, VIEWPORT.maxWidth),
    height: even(cssHeight, VIEWPORT.minHeight, VIEWPORT.maxHeight),
    dpr: Math.round(ratio * 1000) / 1000,
  };
}

/** Parses a binary lossless chunk; null when it is not one. */
export function parseChunk(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < CHUNK_HEADER) return null;
  const view = new DataView(buffer);
  if (view.getUint32(0) !== CHUNK_MAGIC) return null;
  return {
    frame: Number(view.getBigUint64(4)),
    index: view.getUint32(12),
    data: new Uint8Array(buffer, CHUNK_HEADER),
  };
}

/** Parses a text message from the worker; null when it is not a version-1 JSON object. */
export function parseServerMessage(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return null;
  }
  if (!message || typeof message !== "object" || typeof message.type !== "string") return null;
  if (message.v !== VERSION) return null;
  return message;
}

/** The exams a layout can be shown with: `both_eyes` needs the fellow eye, `prior` a prior visit. */
export function layoutsFor(shape, examId) {
  const exams = (shape && shape.exams) || [];
  const exam = exams.find((e) => e.id === examId);
  const layouts = ["single"];
  if (!exam) return layouts;
  if (exams.some((e) => e.id !== exam.id && e.kind === exam.kind && e.eye && exam.eye && e.eye !== exam.eye)) {
    layouts.push("both_eyes");
  }
  if (((shape && shape.prior) || []).some((e) => e.kind === exam.kind && e.eye === exam.eye)) {
    layouts.push("prior");
  }
  return layouts;
}

/** The fields of `saved` that differ from `current`, as a `view` change (viewport excluded). */
export function restoreChange(saved, current) {
  const keys = ["exam", "layout", "slice", "zoom", "center", "window", "level", "gamma", "red_free", "invert", "etdrs", "etdrs_center", "calipers"];
  const change = {};
  for (const key of keys) {
    if (saved[key] === undefined) continue;
    if (JSON.stringify(saved[key]) !== JSON.stringify(current[key])) change[key] = saved[key];
  }
  // The worker refuses a null ETDRS centre in a change; leaving it out keeps the default.
  if (change.etdrs_center === null) delete change.etdrs_center;
  return change;
}
