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
  allGraphs,
  attr,
  countNodes,
  DataType,
  describe,
  dims,
  type Graph,
  GraphShapeError,
  int64Tensor,
  intAttr,
  intsAttr,
  type Node,
  prune,
  referencedNames,
  subgraphs,
  type Tensor,
} from "./onnx-graph.ts";

/** A value as the interpreter knows it: its shape, and its numbers when it is a small integer one. */
type Known = { shape: number[]; values?: number[] | undefined };

/** Integer tensors up to this many elements keep their values (shape vectors, axes, indices). */
const MAX_TRACKED_VALUES = 64;

type ReshapeSeen = { input: number[]; output: number[] };

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

// ---------------------------------------------------------------------------------------------
// The interpreter: shapes of every value, values of the small integer ones

const product = (values: number[]) => values.reduce((a, b) => a * b, 1);

function knownTensor(tensor: Tensor): Known {
  const shape = dims(tensor);
  const size = product(shape);
  const raw = tensor.rawData;
  if (size > MAX_TRACKED_VALUES || raw.byteLength === 0) return { shape };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const read =
    tensor.dataType === DataType.INT64
      ? (i: number) => Number(view.getBigInt64(i * 8, true))
      : tensor.dataType === DataType.INT32
        ? (i: number) => view.getInt32(i * 4, true)
        : undefined;
  return { shape, values: read && Array.from({ length: size }, (_, i) => read(i)) };
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

/** Element `i` of a vector that may be a broadcast scalar. */
const at = (values: number[], i: number) => values[values.length === 1 ? 0 : i] ?? 0;

/** Element-wise operators whose values are followed on vectors (shape arithmetic). */
const ARITHMETIC: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => Math.trunc(x / y),
  Less: (x, y) => Number(x < y),
  Equal: (x, y) => Number(x === y),
  Pow: (x, y) => x ** y,
};

/** Element-wise operators whose output has their first input's shape, values unknown. */
const SAME_SHAPE = new Set(["Sqrt", "Erf", "Softmax", "DequantizeLinear"]);

const normalizeAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function interpret(graph: Graph, env: Map<string, Known>, seen: Map<Node, ReshapeSeen[]>): void {
  for (const tensor of graph.initializer) env.set(tensor.name, knownTensor(tensor));
  for (const node of graph.node) {
    const outputs = evaluate(node, env, seen);
    node.output.forEach((name, i) => {
      const known = outputs[i];
      if (name !== "" && known) env.set(name, known);
    });
  }
}

function evaluate(node: Node, env: Map<string, Known>, seen: Map<Node, ReshapeSeen[]>): Known[] {
  const input = (i: number): Known => {
    const name = node.input[i] ?? "";
    const known = env.get(name);
    if (!known) throw new GraphShapeError(`${describe(node)} reads "${name}", which is unknown`);
    return known;
  };
  const numbers = (i: number): number[] => {
    const values = input(i).values;
    if (!values) throw new GraphShapeError(`${describe(node)}: input ${i} is not a known vector`);
    return values;
  };
  /** Axes from input `i` (opset 13) or the `axes` attribute (before). */
  const axes = (i: number): number[] | undefined =>
    node.input[i] ? numbers(i) : intsAttr(node, "axes");
  const arithmetic = ARITHMETIC[node.opType];
  if (arithmetic) {
    const [a, b] = [input(0), input(1)];
    const shape = broadcast(a.shape, b.shape, node);
    if (!a.values || !b.values || shape.length > 1) return [{ shape }];
    const [x, y] = [a.values, b.values];
    const values = Array.from({ length: product(shape) }, (_, i) => arithmetic(at(x, i), at(y, i)));
    return [{ shape, values }];
  }
  if (SAME_SHAPE.has(node.opType)) return [{ shape: [...input(0).shape] }];
  switch (node.opType) {
    case "Constant": {
      const value = attr(node, "value")?.t;
      if (!value) throw new GraphShapeError(`${describe(node)} has no tensor value`);
      return [knownTensor(value)];
    }
    case "Where": {
      const [condition, x, y] = [input(0), input(1), input(2)];
      const shape = broadcast(broadcast(condition.shape, x.shape, node), y.shape, node);
      if (!condition.values || !x.values || !y.values || shape.length !== 1) return [{ shape }];
      const [c, a, b] = [condition.values, x.values, y.values];
      const pick = (i: number) => (at(c, i) ? at(a, i) : at(b, i));
      return [{ shape, values: Array.from({ length: shape[0] ?? 0 }, (_, i) => pick(i)) }];
    }
    case "Expand":
      return [{ shape: broadcast(input(0).shape, numbers(1), node) }];
    case "ConstantOfShape": {
      const shape = numbers(0);
      const value = attr(node, "value")?.t;
      const fill = value ? knownTensor(value).values?.[0] : 0;
      if (fill === undefined || product(shape) > MAX_TRACKED_VALUES) return [{ shape }];
      return [{ shape, values: Array.from({ length: product(shape) }, () => fill) }];
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
      return [{ shape: [length], values }];
    }
    case "Squeeze": {
      const data = input(0);
      const squeezed = axes(1)?.map((a) => normalizeAxis(a, data.shape.length));
      const shape = data.shape.filter((d, i) => (squeezed ? !squeezed.includes(i) : d !== 1));
      return [{ shape, values: data.values }];
    }
    case "Cast":
      return [{ ...input(0) }];
    case "DynamicQuantizeLinear":
      return [{ shape: [...input(0).shape] }, { shape: [] }, { shape: [] }];
    case "Shape":
      return [{ shape: [input(0).shape.length], values: [...input(0).shape] }];
    case "Unsqueeze": {
      const data = input(0);
      const added = axes(1) ?? [];
      const rank = data.shape.length + added.length;
      const ones = added.map((a) => normalizeAxis(a, rank));
      const rest = [...data.shape];
      const shape = Array.from({ length: rank }, (_, i) =>
        ones.includes(i) ? 1 : (rest.shift() ?? 1),
      );
      return [{ shape, values: data.values }];
    }
    case "Concat": {
      const parts = node.input.map((_, i) => input(i));
      const rank = parts[0]?.shape.length ?? 0;
      const axis = normalizeAxis(intAttr(node, "axis", 0), rank);
      const shape = [...(parts[0]?.shape ?? [])];
      shape[axis] = parts.reduce((sum, p) => sum + (p.shape[axis] ?? 0), 0);
      const known = rank === 1 && parts.every((p) => p.values);
      return [{ shape, values: known ? parts.flatMap((p) => p.values ?? []) : undefined }];
    }
    case "Gather": {
      const [data, indices] = [input(0), input(1)];
      const axis = normalizeAxis(intAttr(node, "axis", 0), data.shape.length);
      const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
      const { values } = data;
      if (!values || !indices.values || data.shape.length !== 1) return [{ shape }];
      return [
        { shape, values: indices.values.map((i) => values[normalizeAxis(i, values.length)] ?? 0) },
      ];
    }
    case "Slice": {
      const data = input(0);
      const starts = numbers(1);
      const ends = numbers(2);
      const sliced = node.input[3] ? numbers(3) : starts.map((_, i) => i);
      if (node.input[4] && numbers(4).some((step) => step !== 1)) {
        throw new GraphShapeError(`${describe(node)}: only unit steps are folded`);
      }
      const shape = [...data.shape];
      let from = 0;
      sliced.forEach((a, i) => {
        const axis = normalizeAxis(a, shape.length);
        const size = shape[axis] ?? 0;
        const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + size : x, 0), size);
        const begin = clamp(starts[i] ?? 0);
        shape[axis] = Math.max(0, clamp(ends[i] ?? size) - begin);
        if (axis === 0) from = begin;
      });
      const vector = data.values && data.shape.length === 1;
      return [
        { shape, values: vector ? data.values?.slice(from, from + (shape[0] ?? 0)) : undefined },
      ];
    }
    case "Reshape": {
      const data = input(0);
      if (intAttr(node, "allowzero", 0) !== 0) {
        throw new GraphShapeError(`${describe(node)}: allowzero is not folded`);
      }
      const output = resolveTarget(numbers(1), data.shape, node);
      seen.set(node, [...(seen.get(node) ?? []), { input: [...data.shape], output }]);
      return [{ shape: output, values: data.values }];
    }
    case "Transpose": {
      const { shape } = input(0);
      const perm = intsAttr(node, "perm") ?? shape.map((_, i) => shape.length - 1 - i);
      return [{ shape: perm.map((p) => shape[p] ?? 0) }];
    }
    case "MatMul":
    case "MatMulInteger": {
      const [a, b] = [input(0).shape, input(1).shape];
      const batch = broadcast(a.slice(0, -2), b.slice(0, -2), node);
      return [{ shape: [...batch, a.at(-2) ?? 1, b.at(-1) ?? 1] }];
    }
    case "ReduceMean": {
      const data = input(0);
      const reduced = (axes(1) ?? []).map((a) => normalizeAxis(a, data.shape.length));
      const shape =
        intAttr(node, "keepdims", 1) === 1
          ? data.shape.map((d, i) => (reduced.includes(i) ? 1 : d))
          : data.shape.filter((_, i) => !reduced.includes(i));
      return [{ shape }];
    }
    case "If": {
      // Both branches see the outer values; the If's outputs take the first branch's shapes.
      let outputs: Known[] = [];
      for (const branch of subgraphs(node)) {
        const inner = new Map(env);
        interpret(branch, inner, seen);
        if (outputs.length === 0) {
          outputs = branch.output.map((o) => inner.get(o.name) ?? { shape: [] });
        }
      }
      return outputs;
    }
    default:
      throw new GraphShapeError(`${describe(node)}: the shape folder does not know ${node.opType}`);
  }
}

/** A Reshape's output shape for `target` (0: the input's dim there; -1: what is left). */
function applyTarget(target: number[], input: number[]): number[] {
  const copied = target.map((d, i) => (d === 0 ? (input[i] ?? 0) : d));
  const known = product(copied.filter((d) => d !== -1));
  return copied.map((d) => (d === -1 ? product(input) / known : d));
}

function resolveTarget(target: number[], input: number[], node: Node): number[] {
  const output = applyTarget(target, input);
  if (product(output) !== product(input) || output.some((d) => !Number.isInteger(d))) {
    throw new GraphShapeError(`${describe(node)}: [${target}] does not fit an input of [${input}]`);
  }
  return output;
}

// ---------------------------------------------------------------------------------------------
// Constant targets

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
  const reproduces = samples.every((s) => applyTarget(spec, s.input).join() === s.output.join());
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
    const constant = graph.initializer.some((t) => t.name === target);
    if (node.opType !== "Reshape" || target === undefined || constant) continue;
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
    if (kind) {
      if (kind === "split" && !views.has(data)) return 0;
      if (kind === "merge") views.add(out);
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
