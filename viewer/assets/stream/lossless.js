// The lossless settle, browser side: reassemble the image chunks (lossless WebP) the worker sends
// after the view has been idle, draw them at device-pixel size and re-hash the drawn pixels. The
// LOSSLESS badge is earned only when that hash equals the worker's hash of its own render.

/** Still-image formats a lossless frame may come in (decoded natively and exactly). */
const FORMATS = new Set(["image/webp", "image/png"]);

/** Collects the chunks of the announced lossless frame; older or unannounced chunks are dropped. */
export class LosslessAssembler {
  constructor() {
    this.pending = null;
  }

  /** A `lossless` announcement: frame, width, height, sha256, format, bytes, chunks. */
  announce(message) {
    const chunks = Number(message.chunks);
    const bytes = Number(message.bytes);
    if (!Number.isInteger(chunks) || chunks < 1 || chunks > 100000 || !Number.isFinite(bytes) || bytes < 1 || !FORMATS.has(message.format)) {
      this.pending = null;
      return;
    }
    this.pending = { meta: message, parts: new Array(chunks), received: 0, size: 0 };
  }

  /** Forgets a partly received frame (a newer frame is on screen). */
  drop() {
    this.pending = null;
  }

  /** Fraction of the announced frame received so far (null when nothing is on its way). */
  progress() {
    const p = this.pending;
    return p ? p.size / Number(p.meta.bytes) : null;
  }

  /**
   * Adds a parsed chunk (`protocol.parseChunk`). Returns `{ meta, blob }` when the frame is
   * complete, otherwise null.
   */
  add(chunk) {
    const p = this.pending;
    if (!p || chunk.frame !== p.meta.frame || chunk.index >= p.parts.length || p.parts[chunk.index]) return null;
    p.parts[chunk.index] = chunk.data;
    p.received += 1;
    p.size += chunk.data.byteLength;
    if (p.received < p.parts.length) return null;
    this.pending = null;
    if (p.size !== Number(p.meta.bytes)) return null;
    return { meta: p.meta, blob: new Blob(p.parts, { type: p.meta.format }) };
  }
}

/**
 * Decodes `blob` (lossless WebP or PNG) without colour conversion, draws it 1:1 on `canvas` (resized to the
 * frame) and returns the SHA-256 (hex) of the drawn pixels as RGB8, row-major — the same
 * definition the worker hashes. Throws if the image is not `width` × `height`.
 */
export async function drawAndHash(canvas, blob, width, height) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  try {
    if (bitmap.width !== width || bitmap.height !== height) {
      throw new Error(`lossless frame is ${bitmap.width}×${bitmap.height}, announced ${width}×${height}`);
    }
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bitmap, 0, 0);
    return await hashRgb(ctx.getImageData(0, 0, width, height).data);
  } finally {
    bitmap.close();
  }
}

/** SHA-256 (hex) of the RGB bytes of RGBA pixels. */
export async function hashRgb(rgba) {
  const pixels = rgba.length / 4;
  const rgb = new Uint8Array(pixels * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", rgb));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether this browser can verify lossless frames (SubtleCrypto needs a secure context). */
export function canVerify() {
  return typeof crypto !== "undefined" && !!crypto.subtle && typeof createImageBitmap === "function";
}

/**
 * Runs `task` after the tasks queued before it, one at a time; returns the new tail of the queue.
 * A task that throws or rejects is reported to `onError` and does not stop the ones after it (a
 * bare `chain.then(task)` would stay rejected, and no later lossless frame would be verified).
 */
export function serially(chain, task, onError = (err) => console.warn("lossless verification failed:", err)) {
  return Promise.resolve(chain)
    .catch(() => {})
    .then(() => task())
    .catch((err) => {
      try {
        onError(err);
      } catch {
        // A failing reporter must not break the queue either.
      }
    });
}
