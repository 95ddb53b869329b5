// Test worker: the worker's own decode.js on a File, its pixels as base64 RGBA (a frame copied as inference.js does).
self.onmessage = async ({ data: { file, maxPixels } }) => {
  try {
    const { copyFrame, decodeInput } = await import("/web/worker/decode.js");
    const image = await decodeInput({ kind: "blob", blob: file }, maxPixels, { frames: true });
    const path = image.frame ? "frame" : "pixels";
    const pixels = image.frame ? await copyFrame(image.frame, new Uint8Array(image.width * image.height * 4))
      : new Uint8Array(image.pixels.buffer, image.pixels.byteOffset, image.pixels.length);
    image.frame?.close();
    let text = "";
    for (let i = 0; i < pixels.length; i += 0x8000) text += String.fromCharCode(...pixels.subarray(i, i + 0x8000));
    self.postMessage({ ok: true, path, width: image.width, height: image.height, b64: btoa(text) });
  } catch (err) {
    self.postMessage({ ok: false, error: `${err.name}: ${err.message}` });
  }
};
