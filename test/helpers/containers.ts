/**
 * Containers built in tests, byte by byte: the minimal EBML (WebM/Matroska) writer and the Opus
 * identification header (RFC 7845 §5.1), shared by the demuxer tests and the session's Opus tests.
 */
import { concat } from "./typed-arrays";

/** An element ID's bytes (IDs are written with their marker bit, as in the spec's tables). */
export function id(value: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.from(bytes);
}

/** A size as an 8-byte EBML number (0x01 marker), or the 1-byte "unknown" (0xFF). */
export function size(n: number | null): Uint8Array {
  if (n === null) return new Uint8Array([0xff]);
  const out = new Uint8Array(8);
  out[0] = 0x01;
  for (let i = 7, v = n; i > 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

/** An EBML element of known size holding `children`. */
export function el(elementId: number, ...children: Uint8Array[]): Uint8Array {
  const body = concat(children);
  return concat([id(elementId), size(body.length), body]);
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** An OpusHead packet: version 1, `channels`, `preSkip`, 48 kHz input, mapping `family`. */
export function opusHead(channels: number, preSkip: number, family = 0): Uint8Array {
  const out = new Uint8Array(19);
  out.set(text("OpusHead"));
  const view = new DataView(out.buffer);
  out[8] = 1;
  out[9] = channels;
  view.setUint16(10, preSkip, true);
  view.setUint32(12, 48_000, true);
  out[18] = family;
  return out;
}
