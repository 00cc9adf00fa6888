/**
 * The vocabulary projection's WebAssembly kernel, assembled here byte by byte (no toolchain):
 * `node scripts/models/projection-kernel.ts --write` writes src/stt/whisper/projection.wasm, which
 * is committed (workerd imports it as a compiled module and never compiles bytes at run time;
 * `npm run check` runs `--check`, which fails if the committed file is not what this assembles).
 *
 * What it computes, for R activation rows a (i16, the quantized hidden state minus its zero
 * point) and every token n of an int8 table T (a token's WIDTH bytes contiguous, minus the
 * table's zero point):
 *
 *   out[n·R + r] = Σₖ T[n·WIDTH + k] · a[r·WIDTH + k]        (int32, exact)
 *
 * the same integers as ONNX MatMulInteger with both zero points, without its packing of the
 * 20 MB table on every run: docs/decoder-profile.md ("The projection kernel"). Each 16 table
 * bytes are widened to two i16x8 and multiplied into R accumulators with i32x4.dot_i16x8_s
 * (|T| ≤ 128 and |a| ≤ 255, so a pair's sum is at most 65 280: no overflow anywhere).
 *
 * Exports `memory` (grown by the caller) and `project2`, `project4`, `project6`
 * (table, tokens, activations, out): one per row count a run needs (a cache step has two rows per
 * token, the quantized hidden state and its quantization error; beams and prompts more).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { VocabularyProjection } from "../../src/stt/whisper/projection.ts";

/** Whisper tiny's d_model: bytes per table row. A multiple of 16. */
export const KERNEL_WIDTH = 384;
/** Row counts with a function each: `project${R}`. */
export const KERNEL_ROWS = [2, 4, 6] as const;

export const KERNEL_PATH = path.resolve(
  import.meta.dirname,
  "../../src/stt/whisper/projection.wasm",
);

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
const u32 = (v: number) => leb128(v, false);
const i32 = (v: number) => leb128(v, true);

function vector(items: number[][]): number[] {
  return [...u32(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...u32(body.length), ...body];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...u32(bytes.length), ...bytes];
}

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
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
  /** align 2 (4 bytes) */
  i32Store: (offset: number) => [0x36, 0x02, ...u32(offset)],
  /** align 0: table rows and activations need not be 16-byte aligned */
  v128Load: (offset: number) => [0xfd, ...u32(0x00), 0x00, ...u32(offset)],
  v128Zero: [0xfd, ...u32(0x0c), ...new Array<number>(16).fill(0)],
  extendLowS: [0xfd, ...u32(0x87)],
  extendHighS: [0xfd, ...u32(0x88)],
  dot: [0xfd, ...u32(0xba)],
  i32x4Add: [0xfd, ...u32(0xae)],
  lane: (lane: number) => [0xfd, ...u32(0x1b), lane],
};

/** The body of `project${rows}`: params 0–3 (table, tokens, act, out), then its locals. */
function projectBody(rows: number): number[] {
  const [table, tokens, act, out] = [0, 1, 2, 3];
  const [p, end, o] = [4, 5, 6];
  const [v, lo, hi] = [7, 8, 9];
  const acc = (r: number) => 10 + r;
  const code: number[] = [
    ...op.get(table),
    ...op.set(p),
    ...op.get(out),
    ...op.set(o),
    ...op.get(table),
    ...op.get(tokens),
    ...op.i32Const(KERNEL_WIDTH),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.set(end),
    ...op.block,
    ...op.loop,
    ...op.get(p),
    ...op.get(end),
    ...op.i32GeU,
    ...op.brIf(1),
  ];
  for (let r = 0; r < rows; r++) code.push(...op.v128Zero, ...op.set(acc(r)));
  for (let chunk = 0; chunk < KERNEL_WIDTH / 16; chunk++) {
    code.push(...op.get(p), ...op.v128Load(chunk * 16), ...op.set(v));
    code.push(...op.get(v), ...op.extendLowS, ...op.set(lo));
    code.push(...op.get(v), ...op.extendHighS, ...op.set(hi));
    for (let r = 0; r < rows; r++) {
      const base = (r * KERNEL_WIDTH + chunk * 16) * 2;
      code.push(...op.get(acc(r)));
      // acc += dot(low 8 table bytes, activations k…k+7) + dot(high 8, k+8…k+15)
      for (const [half, offset] of [
        [lo, base],
        [hi, base + 16],
      ] as const) {
        code.push(
          ...op.get(half),
          ...op.get(act),
          ...op.v128Load(offset),
          ...op.dot,
          ...op.i32x4Add,
        );
      }
      code.push(...op.set(acc(r)));
    }
  }
  for (let r = 0; r < rows; r++) {
    code.push(...op.get(o));
    for (let lane = 0; lane < 4; lane++) {
      code.push(...op.get(acc(r)), ...op.lane(lane));
      if (lane > 0) code.push(...op.i32Add);
    }
    code.push(...op.i32Store(r * 4));
  }
  code.push(
    ...op.get(p),
    ...op.i32Const(KERNEL_WIDTH),
    ...op.i32Add,
    ...op.set(p),
    ...op.get(o),
    ...op.i32Const(rows * 4),
    ...op.i32Add,
    ...op.set(o),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.end,
  );
  // Locals: p, end, o (i32), then v, lo, hi and one accumulator per row (v128).
  const locals = vector([
    [...u32(3), I32],
    [...u32(3 + rows), V128],
  ]);
  const body = [...locals, ...code];
  return [...u32(body.length), ...body];
}

/** The kernel module's bytes: deterministic, a pure function of this file. */
export function projectionKernel(): Uint8Array {
  const type = [0x60, ...vector([[I32], [I32], [I32], [I32]]), ...u32(0)];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector([type])),
    ...section(3, vector(KERNEL_ROWS.map(() => u32(0)))),
    // One memory, 1 page to start; the caller grows it to the table's size.
    ...section(5, vector([[0x00, ...u32(1)]])),
    ...section(
      7,
      vector([
        [...name("memory"), 0x02, ...u32(0)],
        ...KERNEL_ROWS.map((rows, i) => [...name(`project${rows}`), 0x00, ...u32(i)]),
      ]),
    ),
    ...section(10, vector(KERNEL_ROWS.map(projectBody))),
  ];
  return Uint8Array.from(bytes);
}

/**
 * A prepared folder's vocabulary table in the committed kernel, for Node scripts (the worker
 * imports projection.wasm as a compiled module instead).
 */
export async function loadProjection(preparedDir: string): Promise<VocabularyProjection> {
  // Node compiles from bytes (the project's WebAssembly types are workerd's, which cannot).
  const Module = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;
  return new VocabularyProjection(
    new Module(await readFile(KERNEL_PATH)),
    await readFile(path.join(preparedDir, "vocab-table.bin")),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const bytes = projectionKernel();
  if (process.argv.includes("--write")) {
    writeFileSync(KERNEL_PATH, bytes);
    console.log(`wrote ${KERNEL_PATH}`);
  } else if (process.argv.includes("--check")) {
    // `npm run check`: the committed kernel is what this file assembles.
    const committed = existsSync(KERNEL_PATH) ? readFileSync(KERNEL_PATH) : new Uint8Array(0);
    if (Buffer.compare(committed, bytes) !== 0) {
      console.error(
        `${path.relative(process.cwd(), KERNEL_PATH)} is not what scripts/models/projection-kernel.ts ` +
          "assembles: run it with --write and commit the result",
      );
      process.exit(1);
    }
  } else {
    console.error("usage: node scripts/models/projection-kernel.ts --write | --check");
    process.exit(2);
  }
}
