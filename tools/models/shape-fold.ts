/**
 * Folds the shape arithmetic out of a graph whose dims are dynamic: the decoder's
 * `Shape` → `Gather` → `Unsqueeze` → `Concat` (→ `Mul`) chains that compute every `Reshape`'s
 * target at run time. Each of those ~500 tiny nodes costs ORT-web a kernel dispatch and an
 * allocation on every decoder step, for numbers that follow from the input shapes alone.
 *
 * How: the graph is interpreted on concrete input shapes (a few samples of every dynamic dim,
 * distinct values, given by the caller), recording what each `Reshape` receives and produces.
 * Then, per `Reshape`:
 * - a target that one constant spec reproduces on every sample (fixed numbers; `0`, "this dim of
 *   the input", where the output dim always equals the input's at that position; at most one
 *   `-1`) becomes that constant, and its chain dies;
 * - the attention's merges of batch and heads ([b, h, a, c] → [b·h, a, c]) and their inverse
 *   splits, which no constant can express (two dims vary), go away together: the batched
 *   `MatMul`s, the `Softmax` over the last axis and the `Transpose` of the last two axes between
 *   them run on the 4-D tensors instead (a graph's views are removed all together or not at all).
 * Dead nodes are then pruned. The arithmetic is untouched — the same matmuls on the same numbers
 * in the same order — so outputs are bit-identical (test/graph-rewrite.test.ts; the prepared
 * decoder against the unfolded one over real decodes: docs/decoder-profile.md).
 *
 * The samples are evidence, not proof: a relation between dims that held on every sample by
 * coincidence would be folded wrongly. Samples whose dims are distinct from each other and from
 * sample to sample rule that out for the products and copies of dims these graphs compute.
 */
import {
  attr,
  DataType,
  describe,
  dims,
  type Graph,
  GraphShapeError,
  int64Tensor,
  intAttr,
  intsAttr,
  type Node,
  opCounts,
  prune,
  referencedNames,
  subgraphs,
  type Tensor,
} from "./onnx-graph.ts";

/** A value as the interpreter knows it: its shape, and its numbers when it is a small integer one. */
interface Known {
  shape: number[];
  values?: number[];
}

/** Integer tensors up to this many elements keep their values (shape vectors, axes, indices). */
const MAX_TRACKED_VALUES = 64;

interface ReshapeSeen {
  input: number[];
  output: number[];
}

export interface FoldReport {
  /** `Reshape`s whose target became a constant. */
  folded: number;
  /** Merge and split `Reshape`s removed with their views. */
  collapsed: number;
  /** `Reshape`s left as they were (their target depends on dims no constant can express). */
  kept: number;
  nodesBefore: number;
  nodesAfter: number;
}

/**
 * Folds `graph` (subgraphs included) in place. `samples`: concrete shapes of the graph's inputs,
 * one map per sample; at least two.
 */
export function foldShapes(graph: Graph, samples: ReadonlyMap<string, number[]>[]): FoldReport {
  if (samples.length < 2) throw new GraphShapeError("shape folding needs at least two samples");
  // Dead nodes first: only what runs needs interpreting.
  prune(graph);
  const nodesBefore = countNodes(graph);
  const seen = new Map<Node, ReshapeSeen[]>();
  for (const sample of samples) {
    const env = new Map<string, Known>();
    for (const [name, shape] of sample) env.set(name, { shape });
    interpret(graph, env, seen);
  }
  const report = { folded: 0, collapsed: 0, kept: 0 };
  const shapeReaders: Node[] = [];
  for (const g of allGraphs(graph)) {
    const unfolded = foldConstantTargets(g, seen, report);
    const collapsed = collapseViews(g, unfolded, seen, shapeReaders);
    report.collapsed += collapsed;
    report.kept += unfolded.length - collapsed;
  }
  prune(graph);
  // A Shape of a collapsed view now reads a 4-D tensor: allowed only where nothing used it.
  const alive = new Set(allGraphs(graph).flatMap((g) => g.node));
  for (const node of shapeReaders) {
    if (alive.has(node)) {
      throw new GraphShapeError(`${describe(node)} reads a collapsed view and is still used`);
    }
  }
  return { ...report, nodesBefore, nodesAfter: countNodes(graph) };
}

function countNodes(graph: Graph): number {
  return [...opCounts(graph).values()].reduce((sum, n) => sum + n, 0);
}

function allGraphs(graph: Graph): Graph[] {
  return [graph, ...graph.node.flatMap((n) => subgraphs(n).flatMap(allGraphs))];
}

// ---------------------------------------------------------------------------------------------
// The interpreter: shapes of every value, values of the small integer ones

function knownTensor(tensor: Tensor): Known {
  const shape = dims(tensor);
  const size = shape.reduce((a, b) => a * b, 1);
  const raw = tensor.rawData;
  if (size > MAX_TRACKED_VALUES || raw.byteLength === 0) return { shape };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (tensor.dataType === DataType.INT64) {
    return {
      shape,
      values: Array.from({ length: size }, (_, i) => Number(view.getBigInt64(i * 8, true))),
    };
  }
  if (tensor.dataType === DataType.INT32) {
    return { shape, values: Array.from({ length: size }, (_, i) => view.getInt32(i * 4, true)) };
  }
  return { shape };
}

function broadcast(a: number[], b: number[], node: Node): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new GraphShapeError(`${describe(node)}: shapes [${a}] and [${b}] do not broadcast`);
    }
    return x === 1 ? y : x;
  });
}

function elementwise(node: Node, a: Known, b: Known, f: (x: number, y: number) => number): Known {
  const shape = broadcast(a.shape, b.shape, node);
  const size = shape.reduce((p, q) => p * q, 1);
  if (!a.values || !b.values || shape.length > 1) return { shape };
  const { values: x } = a;
  const { values: y } = b;
  return {
    shape,
    values: Array.from({ length: size }, (_, i) =>
      f(x[x.length === 1 ? 0 : i] ?? 0, y[y.length === 1 ? 0 : i] ?? 0),
    ),
  };
}

const normalizeAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function interpret(graph: Graph, env: Map<string, Known>, seen: Map<Node, ReshapeSeen[]>): void {
  for (const tensor of graph.initializer) env.set(tensor.name, knownTensor(tensor));
  for (const node of graph.node) {
    const input = (i: number): Known | undefined => {
      const name = node.input[i];
      if (name === undefined || name === "") return undefined;
      const known = env.get(name);
      if (!known) throw new GraphShapeError(`${describe(node)} reads "${name}", which is unknown`);
      return known;
    };
    const first = (): Known => {
      const known = input(0);
      if (!known) throw new GraphShapeError(`${describe(node)} has no input`);
      return known;
    };
    const numbers = (i: number): number[] => {
      const values = input(i)?.values;
      if (!values) throw new GraphShapeError(`${describe(node)}: input ${i} is not a known vector`);
      return values;
    };
    const outputs = evaluate(node, first, input, numbers, env, seen);
    node.output.forEach((name, i) => {
      const known = outputs[i];
      if (name !== "" && known) env.set(name, known);
    });
  }
}

function evaluate(
  node: Node,
  first: () => Known,
  input: (i: number) => Known | undefined,
  numbers: (i: number) => number[],
  env: Map<string, Known>,
  seen: Map<Node, ReshapeSeen[]>,
): Known[] {
  const other = (i: number): Known => {
    const known = input(i);
    if (!known) throw new GraphShapeError(`${describe(node)} has no input ${i}`);
    return known;
  };
  switch (node.opType) {
    case "Constant": {
      const value = attr(node, "value")?.t;
      if (!value) throw new GraphShapeError(`${describe(node)} has no tensor value`);
      return [knownTensor(value)];
    }
    case "Add":
      return [elementwise(node, first(), other(1), (x, y) => x + y)];
    case "Sub":
      return [elementwise(node, first(), other(1), (x, y) => x - y)];
    case "Mul":
      return [elementwise(node, first(), other(1), (x, y) => x * y)];
    case "Div":
      return [elementwise(node, first(), other(1), (x, y) => Math.trunc(x / y))];
    case "Less":
      return [elementwise(node, first(), other(1), (x, y) => Number(x < y))];
    case "Equal":
      return [elementwise(node, first(), other(1), (x, y) => Number(x === y))];
    case "Pow":
      return [{ shape: broadcast(first().shape, other(1).shape, node) }];
    case "Where": {
      const [condition, x, y] = [first(), other(1), other(2)];
      const shape = broadcast(broadcast(condition.shape, x.shape, node), y.shape, node);
      if (!condition.values || !x.values || !y.values || shape.length !== 1) return [{ shape }];
      const at = (v: number[], i: number) => v[v.length === 1 ? 0 : i] ?? 0;
      const [c, a, b] = [condition.values, x.values, y.values];
      return [
        {
          shape,
          values: Array.from({ length: shape[0] ?? 0 }, (_, i) => (at(c, i) ? at(a, i) : at(b, i))),
        },
      ];
    }
    case "Expand":
      return [{ shape: broadcast(first().shape, numbers(1), node) }];
    case "ConstantOfShape": {
      const shape = numbers(0);
      const size = shape.reduce((x, y) => x * y, 1);
      const value = attr(node, "value")?.t;
      const fill = value ? (knownTensor(value).values?.[0] ?? null) : 0;
      if (fill === null || size > MAX_TRACKED_VALUES) return [{ shape }];
      return [{ shape, values: Array.from({ length: size }, () => fill) }];
    }
    case "Range": {
      const [start = 0] = numbers(0);
      const [limit = 0] = numbers(1);
      const [delta = 1] = numbers(2);
      const length = Math.max(Math.ceil((limit - start) / delta), 0);
      const values =
        length <= MAX_TRACKED_VALUES
          ? Array.from({ length }, (_, i) => start + i * delta)
          : undefined;
      return [{ shape: [length], ...(values ? { values } : {}) }];
    }
    case "Squeeze": {
      const data = first();
      const axes = node.input[1] ? numbers(1) : intsAttr(node, "axes");
      const at = axes?.map((a) => normalizeAxis(a, data.shape.length));
      const shape = data.shape.filter((d, i) => (at ? !at.includes(i) : d !== 1));
      return [{ shape, ...(data.values ? { values: data.values } : {}) }];
    }
    case "Cast":
      return [{ ...first() }];
    case "Sqrt":
    case "Erf":
    case "Softmax":
    case "DequantizeLinear":
      return [{ shape: [...first().shape] }];
    case "DynamicQuantizeLinear":
      return [{ shape: [...first().shape] }, { shape: [] }, { shape: [] }];
    case "Shape":
      return [{ shape: [first().shape.length], values: [...first().shape] }];
    case "Unsqueeze": {
      const data = first();
      const axes = node.input[1] ? numbers(1) : (intsAttr(node, "axes") ?? []);
      const rank = data.shape.length + axes.length;
      const at = axes.map((a) => normalizeAxis(a, rank));
      const rest = [...data.shape];
      const shape = Array.from({ length: rank }, (_, i) =>
        at.includes(i) ? 1 : (rest.shift() ?? 1),
      );
      return [{ shape, ...(data.values ? { values: data.values } : {}) }];
    }
    case "Concat": {
      const parts = node.input.map((_, i) => other(i));
      const rank = parts[0]?.shape.length ?? 0;
      const axis = normalizeAxis(intAttr(node, "axis", 0), rank);
      const shape = [...(parts[0]?.shape ?? [])];
      shape[axis] = parts.reduce((sum, p) => sum + (p.shape[axis] ?? 0), 0);
      const values =
        rank === 1 && parts.every((p) => p.values)
          ? parts.flatMap((p) => p.values ?? [])
          : undefined;
      return [{ shape, ...(values ? { values } : {}) }];
    }
    case "Gather": {
      const data = first();
      const indices = other(1);
      const axis = normalizeAxis(intAttr(node, "axis", 0), data.shape.length);
      const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
      const { values } = data;
      if (!values || !indices.values || data.shape.length !== 1) return [{ shape }];
      return [
        { shape, values: indices.values.map((i) => values[normalizeAxis(i, values.length)] ?? 0) },
      ];
    }
    case "Slice": {
      const data = first();
      const starts = numbers(1);
      const ends = numbers(2);
      const axes = node.input[3] ? numbers(3) : starts.map((_, i) => i);
      if (node.input[4] && numbers(4).some((step) => step !== 1)) {
        throw new GraphShapeError(`${describe(node)}: only unit steps are folded`);
      }
      const shape = [...data.shape];
      let from = 0;
      axes.forEach((a, i) => {
        const axis = normalizeAxis(a, shape.length);
        const size = shape[axis] ?? 0;
        const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + size : x, 0), size);
        const begin = clamp(starts[i] ?? 0);
        shape[axis] = Math.max(0, clamp(ends[i] ?? size) - begin);
        if (axis === 0) from = begin;
      });
      const values =
        data.values && data.shape.length === 1
          ? data.values.slice(from, from + (shape[0] ?? 0))
          : undefined;
      return [{ shape, ...(values ? { values } : {}) }];
    }
    case "Reshape": {
      const data = first();
      if (intAttr(node, "allowzero", 0) !== 0) {
        throw new GraphShapeError(`${describe(node)}: allowzero is not folded`);
      }
      const output = resolveTarget(numbers(1), data.shape, node);
      const list = seen.get(node) ?? [];
      list.push({ input: [...data.shape], output });
      seen.set(node, list);
      return [{ shape: output, ...(data.values ? { values: data.values } : {}) }];
    }
    case "Transpose": {
      const data = first();
      const perm = intsAttr(node, "perm") ?? data.shape.map((_, i) => data.shape.length - 1 - i);
      return [{ shape: perm.map((p) => data.shape[p] ?? 0) }];
    }
    case "MatMul":
    case "MatMulInteger": {
      const a = first().shape;
      const b = other(1).shape;
      const batch = broadcast(a.slice(0, -2), b.slice(0, -2), node);
      return [{ shape: [...batch, a.at(-2) ?? 1, b.at(-1) ?? 1] }];
    }
    case "ReduceMean": {
      const data = first();
      const axes = (node.input[1] ? numbers(1) : intsAttr(node, "axes")) ?? [];
      const at = axes.map((a) => normalizeAxis(a, data.shape.length));
      const keep = intAttr(node, "keepdims", 1) === 1;
      const shape = keep
        ? data.shape.map((d, i) => (at.includes(i) ? 1 : d))
        : data.shape.filter((_, i) => !at.includes(i));
      return [{ shape }];
    }
    case "If": {
      // Both branches see the outer values; the If's outputs take the first branch's shapes.
      let outputs: Known[] = [];
      for (const branch of subgraphs(node)) {
        const inner = new Map(env);
        interpret(branch, inner, seen);
        if (outputs.length === 0)
          outputs = branch.output.map((o) => inner.get(o.name) ?? { shape: [] });
      }
      return outputs;
    }
    default:
      throw new GraphShapeError(`${describe(node)}: the shape folder does not know ${node.opType}`);
  }
}

/** A Reshape's output shape for `target` (0: the input's dim there; -1: what is left). */
function resolveTarget(target: number[], input: number[], node: Node): number[] {
  const total = input.reduce((a, b) => a * b, 1);
  const copied = target.map((d, i) => (d === 0 ? (input[i] ?? 0) : d));
  const known = copied.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const output = copied.map((d) => (d === -1 ? total / known : d));
  if (output.reduce((a, b) => a * b, 1) !== total || output.some((d) => !Number.isInteger(d))) {
    throw new GraphShapeError(`${describe(node)}: [${target}] does not fit an input of [${input}]`);
  }
  return output;
}

// ---------------------------------------------------------------------------------------------
// Constant targets

function isConstant(graph: Graph, name: string): boolean {
  return graph.initializer.some((t) => t.name === name);
}

/** One spec for every sample, or null. */
function constantSpec(samples: ReshapeSeen[]): number[] | null {
  const rank = samples[0]?.output.length ?? 0;
  if (samples.some((s) => s.output.length !== rank)) return null;
  const spec = Array.from({ length: rank }, (_, i) => {
    const dims = samples.map((s) => s.output[i] ?? 0);
    if (dims.every((d) => d === dims[0])) return dims[0] ?? 0;
    if (samples.every((s) => s.input[i] === s.output[i])) return 0;
    return -1;
  });
  if (spec.filter((d) => d === -1).length > 1) return null;
  const reproduces = samples.every((s) => {
    const total = s.input.reduce((a, b) => a * b, 1);
    const copied = spec.map((d, i) => (d === 0 ? (s.input[i] ?? 0) : d));
    const known = copied.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    return copied.map((d) => (d === -1 ? total / known : d)).join() === s.output.join();
  });
  return reproduces ? spec : null;
}

/** Folds what a constant can express; returns the Reshapes left with a computed target. */
function foldConstantTargets(
  graph: Graph,
  seen: Map<Node, ReshapeSeen[]>,
  report: { folded: number },
): Node[] {
  const left: Node[] = [];
  for (const node of graph.node) {
    const target = node.input[1];
    if (node.opType !== "Reshape" || target === undefined || isConstant(graph, target)) continue;
    const samples = seen.get(node);
    if (!samples) throw new GraphShapeError(`${describe(node)} was never reached`);
    const spec = constantSpec(samples);
    if (!spec) {
      left.push(node);
      continue;
    }
    const name = `${node.output[0]}/earshot-shape`;
    graph.initializer.push(int64Tensor(name, spec, [spec.length]));
    node.input[1] = name;
    report.folded += 1;
  }
  return left;
}

// ---------------------------------------------------------------------------------------------
// Merged batch-and-heads views

type ViewKind = "merge" | "split";

/** `three` is `four` with its first two dims (batch and heads) merged into one. */
function merged(four: number[], three: number[]): boolean {
  const [b = 0, h = 0, a, c] = four;
  return four.length === 4 && three.length === 3 && three.join() === [b * h, a, c].join();
}

function viewKind(samples: ReshapeSeen[]): ViewKind | null {
  if (samples.every((s) => merged(s.input, s.output))) return "merge";
  if (samples.every((s) => merged(s.output, s.input))) return "split";
  return null;
}

/**
 * Removes the graph's merge and split Reshapes if every use of a merged value is one this can
 * carry over to 4-D; otherwise changes nothing. Returns how many Reshapes went.
 */
function collapseViews(
  graph: Graph,
  candidates: Node[],
  seen: Map<Node, ReshapeSeen[]>,
  shapeReaders: Node[],
): number {
  const kinds = new Map<Node, ViewKind>();
  for (const node of candidates) {
    const kind = viewKind(seen.get(node) ?? []);
    if (kind) kinds.set(node, kind);
  }
  if (kinds.size === 0) return 0;
  // Plan first (names as they are), edit after, so a graph that cannot be collapsed is untouched.
  const views = new Set<string>();
  const alias = new Map<string, string>();
  const edits: (() => void)[] = [];
  const readers: Node[] = [];
  for (const node of graph.node) {
    const kind = kinds.get(node);
    const [data = ""] = node.input;
    const [out = ""] = node.output;
    if (kind === "merge") {
      views.add(out);
      alias.set(out, alias.get(data) ?? data);
      continue;
    }
    if (kind === "split") {
      if (!views.has(data)) return 0;
      alias.set(out, alias.get(data) ?? data);
      continue;
    }
    if (!node.input.some((name) => views.has(name))) continue;
    if (node.opType === "Shape") {
      readers.push(node);
      continue;
    }
    if (node.opType === "MatMul" && node.input.every((name) => views.has(name))) {
      views.add(out);
    } else if (node.opType === "Transpose" && intsAttr(node, "perm")?.join() === "0,2,1") {
      const perm = attr(node, "perm");
      if (!perm) return 0;
      edits.push(() => {
        perm.ints = [0, 1, 3, 2];
      });
      views.add(out);
    } else if (node.opType === "Softmax" && [-1, 2].includes(intAttr(node, "axis", 1))) {
      // Only an explicit axis: the default is 1 before opset 13 and -1 after, and the graph does
      // not say which opset it is read with. Over the last axis, 3-D or 4-D, either opset's
      // Softmax normalises the same rows.
      const axis = attr(node, "axis");
      if (!axis) return 0;
      edits.push(() => {
        axis.i = -1;
      });
      views.add(out);
    } else {
      return 0;
    }
  }
  // A view or a removed Reshape's output must not leave the graph, as an output or as an outer
  // name a subgraph reads: its rank would change, or its producer would be gone.
  const leaves = (name: string) => views.has(name) || alias.has(name);
  if (graph.output.some((o) => leaves(o.name))) return 0;
  for (const node of graph.node) {
    if (subgraphs(node).length > 0 && [...referencedNames(node)].some(leaves)) return 0;
  }
  for (const edit of edits) edit();
  for (const node of graph.node) node.input = node.input.map((name) => alias.get(name) ?? name);
  graph.node = graph.node.filter((node) => !kinds.has(node));
  shapeReaders.push(...readers);
  return kinds.size;
}
