/**
 * The few pieces of WebAssembly's binary format that tools/models/projection-kernel.ts needs to
 * assemble its kernel by hand (no toolchain): LEB128 numbers, vectors, sections, names, and the
 * instructions it uses, by their opcodes in the WebAssembly 2.0 core spec (SIMD ones after the
 * 0xfd prefix, their index as an unsigned LEB128). Whatever this gets wrong the engine refuses
 * (WebAssembly.Module validates) or test/projection.test.ts catches against plain references.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

function leb128(value: number, signed: boolean): number[] {
  const bytes: number[] = [];
  let v = value;
  for (;;) {
    const byte = v & 0x7f;
    v = signed ? v >> 7 : v >>> 7;
    const done = signed
      ? (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)
      : v === 0;
    bytes.push(done ? byte : byte | 0x80);
    if (done) return bytes;
  }
}
export const u32 = (v: number) => leb128(v, false);
const i32 = (v: number) => leb128(v, true);

export function vector(items: number[][]): number[] {
  return [...u32(items.length), ...items.flat()];
}

export function section(id: number, body: number[]): number[] {
  return [id, ...u32(body.length), ...body];
}

export function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...u32(bytes.length), ...bytes];
}

/** A function type: params → results (value types above). */
export function funcType(params: number[], results: number[]): number[] {
  return [0x60, ...vector(params.map((t) => [t])), ...vector(results.map((t) => [t]))];
}

/** A function body: its code and locals (runs of [count, type]), length-prefixed. */
export function funcBody(code: number[], ...locals: [number, number][]): number[] {
  const body = [...vector(locals.map(([count, type]) => [...u32(count), type])), ...code];
  return [...u32(body.length), ...body];
}

/** A v128.const with the same 4-byte value in every lane, written by `set` into a DataView. */
function splat(set: (view: DataView) => void): number[] {
  const bytes = new Uint8Array(4);
  set(new DataView(bytes.buffer));
  return [...simd(0x0c), ...bytes, ...bytes, ...bytes, ...bytes];
}

const simd = (index: number) => [0xfd, ...u32(index)];

export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: (depth: number) => [0x0c, ...u32(depth)],
  brIf: (depth: number) => [0x0d, ...u32(depth)],
  end: [0x0b],
  get: (local: number) => [0x20, ...u32(local)],
  set: (local: number) => [0x21, ...u32(local)],
  i32Const: (v: number) => [0x41, ...i32(v)],
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32GeU: [0x4f],
  f64Add: [0xa0],
  /** align 2 (4 bytes) */
  i32Store: (offset: number) => [0x36, 0x02, ...u32(offset)],
  /** align 0: table rows and activations need not be 16-byte aligned */
  v128Load: (offset: number) => [...simd(0x00), 0x00, ...u32(offset)],
  v128Zero: [...simd(0x0c), ...new Array<number>(16).fill(0)],
  /** The same float32 in every lane. */
  f32x4Const: (value: number) => splat((view) => view.setFloat32(0, value, true)),
  i32x4Const: (value: number) => splat((view) => view.setInt32(0, value, true)),
  /** Both operands' bytes by index (0–15 the first's, 16–31 the second's). */
  shuffle: (lanes: number[]) => [...simd(0x0d), ...lanes],
  f32x4Splat: simd(0x13),
  f32x4ExtractLane: (lane: number) => [...simd(0x1f), lane],
  f64x2ExtractLane: (lane: number) => [...simd(0x21), lane],
  f32x4Lt: simd(0x43),
  /** a & ~b */
  v128AndNot: simd(0x4f),
  f64x2PromoteLow: simd(0x5f),
  f32x4Nearest: simd(0x6a),
  extendLowS: simd(0x87),
  extendHighS: simd(0x88),
  i32x4Shl: simd(0xab),
  i32x4Add: simd(0xae),
  dot: simd(0xba),
  lane: (lane: number) => [...simd(0x1b), lane],
  f32x4Add: simd(0xe4),
  f32x4Sub: simd(0xe5),
  f32x4Mul: simd(0xe6),
  /** b > a ? b : a (a NaN in b is passed over, as JavaScript's `>` does) */
  f32x4Pmax: simd(0xeb),
  f64x2Add: simd(0xf0),
  i32x4TruncSatF32x4S: simd(0xf8),
};
