// UTF-8 for the bytes that cross the WIT boundary. QuickJS has no TextEncoder/TextDecoder, so
// the SDK carries its own; where the engine has them (SpiderMonkey, Node) they serve.

const hasCodec = typeof TextEncoder !== "undefined" && typeof TextDecoder !== "undefined";
const encoder = hasCodec ? new TextEncoder() : undefined;
const decoder = hasCodec ? new TextDecoder("utf-8", { fatal: true }) : undefined;

/** The UTF-8 bytes of `text` (a lone surrogate becomes U+FFFD, as TextEncoder does). */
export function encodeUtf8(text: string): Uint8Array {
  return encoder !== undefined ? encoder.encode(text) : ownEncodeUtf8(text);
}

/** The SDK's own encoder (what QuickJS runs). The engine's C builtins do the UTF-8 work
 * (`encodeURIComponent` then `unescape` give one character per byte); one loop copies them out. */
export function ownEncodeUtf8(text: string): Uint8Array {
  let binary: string;
  try {
    binary = unescape(encodeURIComponent(text));
  } catch {
    return slowEncodeUtf8(text); // a lone surrogate: U+FFFD, as TextEncoder writes it
  }
  return binaryToBytes(binary);
}

type Base64Array = { fromBase64?: (text: string) => Uint8Array };
type Base64Bytes = { toBase64?: () => string };
const g = globalThis as { btoa?: (text: string) => string; atob?: (text: string) => string };

/** One byte per character, by the engine's base64 builtins where it has them (QuickJS does:
 * a JS loop over each byte costs ~0.3 µs a byte there), else by a loop. */
export function binaryToBytes(binary: string): Uint8Array {
  const fromBase64 = (Uint8Array as unknown as Base64Array).fromBase64;
  if (fromBase64 !== undefined && g.btoa !== undefined) return fromBase64(g.btoa(binary));
  const out = new Uint8Array(binary.length);
  for (let at = 0; at < binary.length; at++) out[at] = binary.charCodeAt(at);
  return out;
}

/** One character per byte, by base64 builtins where the engine has them. */
export function bytesToBinary(bytes: Uint8Array): string {
  const toBase64 = (bytes as unknown as Base64Bytes).toBase64;
  if (toBase64 !== undefined && g.atob !== undefined) return g.atob(toBase64.call(bytes));
  let binary = "";
  for (let at = 0; at < bytes.length; at += 8192) {
    binary += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
  }
  return binary;
}

const HIGH_BYTE = /[\u0080-\u00ff]/;

function slowEncodeUtf8(text: string): Uint8Array {
  const out: number[] = [];
  for (let at = 0; at < text.length; at++) {
    let code = text.charCodeAt(at);
    if (code < 0x80) {
      out.push(code);
      continue;
    }
    if (code >= 0xd800 && code <= 0xdbff && at + 1 < text.length) {
      const low = text.charCodeAt(at + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        at++;
      } else {
        code = 0xfffd;
      }
    } else if (code >= 0xd800 && code <= 0xdfff) {
      code = 0xfffd;
    }
    if (code < 0x800) {
      out.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    } else {
      out.push(
        0xf0 | (code >> 18),
        0x80 | ((code >> 12) & 0x3f),
        0x80 | ((code >> 6) & 0x3f),
        0x80 | (code & 0x3f),
      );
    }
  }
  return new Uint8Array(out);
}

/** The text of UTF-8 `bytes`; throws a TypeError on bytes that are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string {
  return decoder !== undefined ? decoder.decode(bytes) : ownDecodeUtf8(bytes);
}

/** The SDK's own decoder (what QuickJS runs): one character per byte (`bytesToBinary`), then
 * `decodeURIComponent(escape(...))` reads them as UTF-8, builtins both. */
export function ownDecodeUtf8(bytes: Uint8Array): string {
  const binary = bytesToBinary(bytes);
  if (!HIGH_BYTE.test(binary)) return binary;
  try {
    return decodeURIComponent(escape(binary));
  } catch {
    return slowDecodeUtf8(bytes); // names the first byte that is not UTF-8
  }
}

function slowDecodeUtf8(bytes: Uint8Array): string {
  let text = "";
  let at = 0;
  while (at < bytes.length) {
    const first = bytes[at]!;
    if (first < 0x80) {
      // A run of ASCII, the common case for JSON.
      let end = at + 1;
      while (end < bytes.length && bytes[end]! < 0x80 && end - at < 4096) end++;
      text += String.fromCharCode.apply(null, Array.from(bytes.subarray(at, end)));
      at = end;
      continue;
    }
    const need = first >= 0xf0 ? 3 : first >= 0xe0 ? 2 : first >= 0xc0 ? 1 : -1;
    if (need < 0 || first > 0xf4 || at + need >= bytes.length) {
      throw new TypeError(`the bytes are not UTF-8 (at byte ${at})`);
    }
    let code = first & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const next = bytes[at + k]!;
      if ((next & 0xc0) !== 0x80) throw new TypeError(`the bytes are not UTF-8 (at byte ${at + k})`);
      code = (code << 6) | (next & 0x3f);
    }
    const least = need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000;
    if (code < least || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      throw new TypeError(`the bytes are not UTF-8 (at byte ${at})`);
    }
    if (code >= 0x10000) {
      code -= 0x10000;
      text += String.fromCharCode(0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff));
    } else {
      text += String.fromCharCode(code);
    }
    at += need + 1;
  }
  return text;
}
