/**
 * The eval set's index, ../shared/eval/dev/manifest.tsv: a header line, then one tab-separated row
 * per clip. Pure, with no workerd or Node import, so tests (through fixtures.ts `manifest()`), the
 * browser test and the Node scripts read it the same way; columns are found by header name.
 */

export interface ManifestRow {
  id: string;
  /** WAV file name inside eval/dev. */
  file: string;
  /** Seconds of audio (the `duration_s` column). */
  duration: number;
  /** Lowercase reference transcript without punctuation ("" for clips without speech). */
  reference: string;
  /** "speech" or "nonspeech"; "speech" in a set without the column (eval/multilingual). */
  category: string;
  /** Language code, where the set has the column (eval/multilingual); else undefined. */
  language?: string;
}

export function parseManifest(text: string): ManifestRow[] {
  const [header, ...lines] = text.trim().split("\n");
  const columns = (header ?? "").split("\t");
  const column = (name: string) => {
    const at = columns.indexOf(name);
    if (at < 0) throw new Error(`manifest.tsv has no column ${name}`);
    return at;
  };
  const id = column("id");
  const file = column("file");
  const duration = column("duration_s");
  const reference = column("reference");
  const category = columns.indexOf("category");
  const language = columns.indexOf("language");
  return lines.map((line) => {
    const cells = line.split("\t");
    return {
      id: cells[id] ?? "",
      file: cells[file] ?? "",
      duration: Number(cells[duration]),
      reference: cells[reference] ?? "",
      category: category < 0 ? "speech" : (cells[category] ?? ""),
      ...(language < 0 ? {} : { language: cells[language] ?? "" }),
    };
  });
}
