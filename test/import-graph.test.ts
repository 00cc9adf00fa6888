/// <reference types="vite/client" />
/**
 * The house's import rules, read from the sources themselves (Vite's import.meta.glob bundles
 * their text into this test, which runs in workerd and cannot read the disk):
 * - no import cycles in src/, type-only imports included (a cycle of types still ties two modules
 *   to each other's changes), nor in the tooling (tools/);
 * - src/ imports nothing of the tooling or the tests: the product builds alone;
 * - the tooling imports nothing from test/: tests use tools, not the other way round;
 * - the tooling's rooms (tools/<room>/) depend one way: load (bench and soak) may use every room,
 *   dev the model pipeline and the eval kit, models and eval each other only, and the client
 *   nothing of the tooling — so a room can be read, and changed, without the ones above it.
 * Every relative import is resolved to a file that exists, so a rule cannot pass because a path
 * was misread.
 */
import { describe, expect, it } from "vitest";

const SOURCES = import.meta.glob(
  ["../src/**/*.ts", "../tools/**/*.ts", "../public/*.js", "../test/**/*.ts"],
  { query: "?raw", import: "default", eager: true },
) as Record<string, string>;

/** Repository-relative path ("src/index.ts") of a glob key ("../src/index.ts", "./x.test.ts"). */
const repoPath = (key: string) => (key.startsWith("./") ? `test/${key.slice(2)}` : key.slice(3));
const FILES = new Map(Object.entries(SOURCES).map(([key, text]) => [repoPath(key), text]));

/** Static `import … from "x"`, `export … from "x"`, `import "x"` and literal `import("x")`. */
const SPECIFIER =
  /(?:^|[;\n])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** A relative import of data, not code: the manifest, wasm, model and fixture files. */
const ASSET = /\.(?:json|wasm|onnx|bin)$/;

function normalize(parts: string[]): string {
  const out: string[] = [];
  for (const part of parts) {
    if (part === "..") out.pop();
    else if (part !== "." && part !== "") out.push(part);
  }
  return out.join("/");
}

/**
 * What a relative specifier of `from` names: a file in FILES (tried as written, then with .ts,
 * .js and /index.ts), a path into node_modules, or undefined when it names nothing known.
 */
function resolve(from: string, specifier: string, files: ReadonlySet<string>) {
  const base = normalize([...from.split("/").slice(0, -1), ...specifier.split("/")]);
  if (base.startsWith("node_modules/")) return { external: base };
  for (const candidate of [base, `${base}.ts`, `${base}.js`, `${base}/index.ts`]) {
    if (files.has(candidate)) return { file: candidate };
  }
  return undefined;
}

/** Relative imports of each file, resolved; unresolved ones listed apart. */
function importGraph(files: ReadonlyMap<string, string>) {
  const names = new Set(files.keys());
  const edges = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const [file, text] of files) {
    const targets: string[] = [];
    for (const match of text.matchAll(SPECIFIER)) {
      const specifier = match[1] ?? match[2] ?? "";
      // Packages, and data the bundler loads (JSON, wasm, models): not modules of this house.
      if (!specifier.startsWith(".") || ASSET.test(specifier)) continue;
      const resolved = resolve(file, specifier, names);
      if (!resolved) unresolved.push(`${file} → ${specifier}`);
      else if (resolved.file) targets.push(resolved.file);
    }
    edges.set(file, targets);
  }
  return { edges, unresolved };
}

/** Strongly connected components of more than one file (or a file importing itself): cycles. */
function cycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const target of edges.get(node) ?? []) {
      if (!edges.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(target) ?? 0));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(target) ?? 0));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || edges.get(node)?.includes(node)) found.push(component.sort());
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return found;
}

const { edges, unresolved } = importGraph(FILES);
const under = (prefix: string) => new Map([...edges].filter(([file]) => file.startsWith(prefix)));
const isTooling = (file: string) => file.startsWith("tools/");

describe("the import graph", () => {
  it("reads the sources and resolves every relative import", () => {
    // The glob found the tree (a broken pattern would leave every rule below vacuous).
    expect(under("src/").size).toBeGreaterThan(50);
    expect(edges.get("src/index.ts")?.length).toBeGreaterThan(3);
    expect(unresolved).toEqual([]);
  });

  it("finds a cycle when there is one, type-only imports included", () => {
    const fake = new Map([
      ["src/a.ts", 'import type { B } from "./b";\nexport const a = 1;'],
      ["src/b.ts", 'import { c } from "./c.ts";\nexport type B = number;'],
      ["src/c.ts", 'export { a as c } from "./a";'],
      ["src/d.ts", 'import { a } from "./a";'],
    ]);
    const graph = importGraph(fake);
    expect(graph.unresolved).toEqual([]);
    expect(cycles(graph.edges)).toEqual([["src/a.ts", "src/b.ts", "src/c.ts"]]);
  });

  it("has no cycles in src/", () => {
    expect(cycles(under("src/"))).toEqual([]);
  });

  it("has no cycles in the tooling", () => {
    expect(cycles(new Map([...edges].filter(([file]) => isTooling(file))))).toEqual([]);
  });

  it("keeps src/ free of the tooling and the tests", () => {
    const outside = [...under("src/")].flatMap(([file, targets]) =>
      targets.filter((target) => !target.startsWith("src/")).map((target) => `${file} → ${target}`),
    );
    expect(outside).toEqual([]);
  });

  it("keeps the tooling free of the tests", () => {
    const intoTests = [...edges]
      .filter(([file]) => isTooling(file))
      .flatMap(([file, targets]) =>
        targets
          .filter((target) => target.startsWith("test/"))
          .map((target) => `${file} → ${target}`),
      );
    expect(intoTests).toEqual([]);
  });

  it("keeps the tooling's rooms layered", () => {
    /** Rooms each room may import besides itself (and src/, public/). */
    const allowed: Record<string, string[]> = {
      client: [],
      eval: ["models"],
      models: ["eval"],
      dev: ["models", "eval"],
      load: ["client", "dev", "eval", "models"],
    };
    const room = (file: string) => file.split("/")[1] ?? "";
    const crossings = [...edges]
      .filter(([file]) => isTooling(file))
      .flatMap(([file, targets]) =>
        targets
          .filter((target) => isTooling(target) && room(target) !== room(file))
          .filter((target) => !(allowed[room(file)] ?? []).includes(room(target)))
          .map((target) => `${file} → ${target}`),
      );
    expect(Object.keys(allowed).sort()).toEqual(
      [...new Set([...edges.keys()].filter(isTooling).map(room))].sort(),
    );
    expect(crossings).toEqual([]);
  });
});
