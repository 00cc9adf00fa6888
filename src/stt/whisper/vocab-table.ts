/**
 * vocab-table.bin, the prepared vocabulary table the projection kernel holds (projection.ts): a
 * 24-byte header ("ESVT", version, vocabulary, width, head size, zero point; little-endian
 * uint32s), then the table's rows in the vocabulary order of vocabulary-order.ts, `width` uint8s
 * each. tools/models/prepare.ts writes it; projection.ts reads it.
 */

/** vocab-table.bin: a 24-byte header, then `vocabulary` rows of `width` bytes in column order. */
export const VOCABULARY_TABLE = {
  magic: "ESVT",
  version: 1,
  headerBytes: 24,
} as const;

export interface VocabularyTableHeader {
  vocabulary: number;
  width: number;
  /** Rows of the English head (they come first). */
  headSize: number;
  /** The table's uint8 zero point. */
  zeroPoint: number;
}

/** vocab-table.bin's header (the rows follow it). */
export function encodeTableHeader(header: VocabularyTableHeader): Uint8Array {
  const bytes = new Uint8Array(VOCABULARY_TABLE.headerBytes);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(VOCABULARY_TABLE.magic), 0);
  view.setUint32(4, VOCABULARY_TABLE.version, true);
  view.setUint32(8, header.vocabulary, true);
  view.setUint32(12, header.width, true);
  view.setUint32(16, header.headSize, true);
  view.setUint32(20, header.zeroPoint, true);
  return bytes;
}

export function decodeTableHeader(file: Uint8Array): VocabularyTableHeader {
  if (file.byteLength < VOCABULARY_TABLE.headerBytes) {
    throw new Error(`vocabulary table file has ${file.byteLength} bytes, less than its header`);
  }
  const view = new DataView(file.buffer, file.byteOffset, VOCABULARY_TABLE.headerBytes);
  const magic = new TextDecoder().decode(file.subarray(0, 4));
  const version = view.getUint32(4, true);
  if (magic !== VOCABULARY_TABLE.magic || version !== VOCABULARY_TABLE.version) {
    throw new Error(
      `vocabulary table file starts "${magic}" version ${version}, expected ` +
        `"${VOCABULARY_TABLE.magic}" version ${VOCABULARY_TABLE.version}`,
    );
  }
  const header = {
    vocabulary: view.getUint32(8, true),
    width: view.getUint32(12, true),
    headSize: view.getUint32(16, true),
    zeroPoint: view.getUint32(20, true),
  };
  const expected = VOCABULARY_TABLE.headerBytes + header.vocabulary * header.width;
  if (file.byteLength !== expected) {
    throw new Error(
      `vocabulary table file has ${file.byteLength} bytes, its header says ${expected} ` +
        `(${header.vocabulary} × ${header.width} + header)`,
    );
  }
  return header;
}
