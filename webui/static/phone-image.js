// prepareImage turns a camera photo into what is uploaded: a JPEG of at
// most maxEdge pixels on its long edge, drawn straight into a canvas of
// that size. Re-encoding from pixels is also what strips the metadata: a
// canvas JPEG carries no EXIF, so no GPS position, camera serial or
// original timestamp leaves the phone. Orientation is applied while
// decoding (imageOrientation: 'from-image'), so the pixels are upright and
// nothing depends on an EXIF rotation tag that is no longer there.
export const MAX_EDGE = 2048;
export const JPEG_QUALITY = 0.85;

export class ImageDecodeError extends Error {
  constructor() {
    super('This photo could not be read. Try taking it again with the camera.');
    this.name = 'ImageDecodeError';
  }
}

export async function prepareImage(file, { maxEdge = MAX_EDGE, quality = JPEG_QUALITY } = {}) {
  const source = await decode(file);
  try {
    const { width, height } = sourceSize(source);
    if (!width || !height) throw new ImageDecodeError();
    const scale = Math.min(1, maxEdge / Math.max(width, height));
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d', { alpha: false });
    ctx.fillStyle = '#fff'; // a transparent PNG must not turn black
    ctx.fillRect(0, 0, w, h);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(source, 0, 0, w, h);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
    // Free the canvas memory now; phones hold few large canvases.
    canvas.width = 0;
    canvas.height = 0;
    if (!blob || blob.size === 0) throw new ImageDecodeError();
    return { blob, width: w, height: h };
  } finally {
    source.close?.();
    if (source.dataset?.objectUrl) URL.revokeObjectURL(source.dataset.objectUrl);
  }
}

// decode prefers createImageBitmap, which decodes off the main thread and
// honours the EXIF orientation; an <img> is the fallback for browsers whose
// createImageBitmap lacks the option or the format.
async function decode(file) {
  if (typeof createImageBitmap === 'function') {
    try {
      return await createImageBitmap(file, { imageOrientation: 'from-image' });
    } catch {
      // fall through to <img>
    }
  }
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.dataset.objectUrl = url;
  img.decoding = 'async';
  img.src = url;
  try {
    await img.decode();
  } catch {
    URL.revokeObjectURL(url);
    throw new ImageDecodeError();
  }
  return img; // <img> applies EXIF orientation by default (image-orientation: from-image)
}

function sourceSize(s) {
  return { width: s.naturalWidth ?? s.width, height: s.naturalHeight ?? s.height };
}
