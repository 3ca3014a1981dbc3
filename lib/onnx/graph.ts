/**
 * Graph IR helpers over {@link GraphProto}: producer/consumer indexes, topological order, validation
 * (dangling names, cycles, duplicate outputs), attributes, a node builder and simple chain pattern matching.
 *
 * The IR is the decoded protobuf itself (plain objects), so nothing is lost between decode and encode;
 * these helpers add the graph view on top.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { type AttributeProto, AttributeType, type GraphProto, type NodeProto, type TensorProto } from "./proto.ts";
import { makeTensorProto, type TensorValues } from "./tensor_data.ts";

/**
 * Readable node label for messages: `Conv "conv1"` or `Conv #3`.
 *
 * @example
 * ```ts
 * import { nodeLabel } from "./graph.ts";
 * const n = { input: [], output: [], name: "conv1", opType: "Conv", domain: "", attribute: [] };
 * if (nodeLabel(n) !== 'Conv "conv1"' || nodeLabel({ ...n, name: "" }, 3) !== "Conv #3") throw new Error("bad");
 * ```
 */
export function nodeLabel(n: NodeProto, index?: number): string {
  return n.name ? `${n.opType} "${n.name}"` : `${n.opType} #${index ?? "?"}`;
}

/** Producer and consumer indexes of a graph. */
export interface GraphIndex {
  /** Value name -> index of the node producing it. */
  readonly producer: Map<string, number>;
  /** Value name -> indexes of nodes consuming it (a node appears once per use). */
  readonly consumers: Map<string, number[]>;
  /** Initializer name -> tensor. */
  readonly initializers: Map<string, TensorProto>;
  /** Graph input names (excluding initializers listed as inputs). */
  readonly inputs: Set<string>;
}

/**
 * Build producer/consumer indexes (assumes no duplicate outputs; {@link validateGraph} checks that).
 *
 * @example
 * ```ts
 * import { indexGraph } from "./graph.ts";
 * const g = { name: "g", initializer: [], valueInfo: [], input: [{ name: "x" }], output: [{ name: "y" }],
 *   node: [{ input: ["x"], output: ["y"], name: "", opType: "Relu", domain: "", attribute: [] }] };
 * const ix = indexGraph(g);
 * if (ix.producer.get("y") !== 0 || ix.consumers.get("x")?.[0] !== 0) throw new Error("bad");
 * ```
 */
export function indexGraph(g: GraphProto): GraphIndex {
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  g.node.forEach((n, i) => {
    for (const o of n.output) if (o) producer.set(o, i);
    for (const x of n.input) {
      if (!x) continue;
      const c = consumers.get(x);
      if (c) c.push(i);
      else consumers.set(x, [i]);
    }
  });
  const initializers = new Map(g.initializer.map((t) => [t.name, t]));
  const inputs = new Set(g.input.map((v) => v.name).filter((n) => !initializers.has(n)));
  return { producer, consumers, initializers, inputs };
}

/** Names a subgraph reads from its enclosing scope (inputs its own nodes do not define). */
function outerReferences(g: GraphProto): string[] {
  const defined = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  for (const n of g.node) for (const o of n.output) defined.add(o);
  const out: string[] = [];
  for (const n of g.node) {
    for (const x of n.input) if (x && !defined.has(x)) out.push(x);
    for (const a of n.attribute) {
      for (const sg of subgraphsOf(a)) for (const x of outerReferences(sg)) if (!defined.has(x)) out.push(x);
    }
  }
  return out;
}

function subgraphsOf(a: AttributeProto): GraphProto[] {
  return [...(a.g ? [a.g] : []), ...(a.graphs ?? [])];
}

/**
 * Nodes in topological order: the given order when it is already valid (checked in one linear pass), else
 * Kahn's algorithm whose queue takes the lowest ready index first (stable; O((n + e) log n): a graph of 40,000
 * nodes orders in milliseconds). Throws `MALFORMED_MODEL` naming
 * the nodes of a cycle. Values from `outerScope` count as available.
 *
 * @example
 * ```ts
 * import { topologicalOrder } from "./graph.ts";
 * const node = (i: string, o: string) => ({ input: [i], output: [o], name: o, opType: "Relu", domain: "", attribute: [] });
 * const g = { name: "g", initializer: [], valueInfo: [], input: [{ name: "x" }], output: [{ name: "z" }],
 *   node: [node("y", "z"), node("x", "y")] };
 * if (topologicalOrder(g).map((n) => n.name).join() !== "y,z") throw new Error("bad");
 * ```
 */
export function topologicalOrder(
  g: GraphProto,
  outerScope: { has(name: string): boolean } = new Set<string>(),
): NodeProto[] {
  const nodes = g.node, n = nodes.length;
  const local = new Set<string>();
  for (const v of g.input) local.add(v.name);
  for (const t of g.initializer) local.add(t.name);
  const producer = new Map<string, number>();
  for (let i = 0; i < n; i++) for (const o of nodes[i].output) if (o) producer.set(o, i);
  // One edge per use of a produced value (a value read twice is two edges, released twice): no per-node sets.
  const consumers: number[][] = new Array(n);
  const remaining = new Int32Array(n);
  let inOrder = true;
  const use = (x: string, i: number) => {
    if (!x || local.has(x) || outerScope.has(x)) return;
    const p = producer.get(x);
    if (p === undefined) return;
    (consumers[p] ??= []).push(i);
    remaining[i]++;
    if (p >= i) inOrder = false;
  };
  for (let i = 0; i < n; i++) {
    const node = nodes[i];
    for (const x of node.input) use(x, i);
    for (const a of node.attribute) for (const sg of subgraphsOf(a)) for (const x of outerReferences(sg)) use(x, i);
  }
  if (inOrder) return nodes.slice();
  // Kahn's algorithm; the queue is a binary min-heap of node indexes so that the lowest ready index goes first
  // (stable: independent nodes keep their relative order). Each node enters and leaves once: O((n + e) log n).
  const heap = new Int32Array(n);
  let size = 0;
  const push = (v: number) => {
    let k = size++;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (heap[parent] <= v) break;
      heap[k] = heap[parent];
      k = parent;
    }
    heap[k] = v;
  };
  const pop = (): number => {
    const top = heap[0], last = heap[--size];
    let k = 0;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= size) break;
      if (c + 1 < size && heap[c + 1] < heap[c]) c++;
      if (heap[c] >= last) break;
      heap[k] = heap[c];
      k = c;
    }
    heap[k] = last;
    return top;
  };
  for (let i = 0; i < n; i++) if (remaining[i] === 0) push(i);
  const queue = new Int32Array(n);
  let tail = 0;
  while (size > 0) {
    const i = pop();
    queue[tail++] = i;
    for (const j of consumers[i] ?? []) if (--remaining[j] === 0) push(j);
  }
  if (tail !== n) {
    const done = new Uint8Array(n);
    for (let k = 0; k < tail; k++) done[queue[k]] = 1;
    const stuck: string[] = [];
    for (let i = 0; i < n && stuck.length <= 8; i++) if (!done[i]) stuck.push(nodeLabel(nodes[i], i));
    throw new QuantlabError(
      "MALFORMED_MODEL",
      `graph "${g.name}": cycle among nodes ${stuck.slice(0, 8).join(", ")}${stuck.length > 8 ? ", ..." : ""}`,
    );
  }
  const order = new Array<NodeProto>(n);
  for (let k = 0; k < n; k++) order[k] = nodes[queue[k]];
  return order;
}

/**
 * Check a graph: no value defined twice (node outputs, inputs, initializers), every node input defined (or in
 * `outerScope`), every graph output defined, no cycle, node op types non-empty; recurses into subgraphs.
 * Throws `MALFORMED_MODEL` naming the node and value.
 *
 * @example
 * ```ts
 * import { validateGraph } from "./graph.ts";
 * const g = { name: "g", initializer: [], valueInfo: [], input: [{ name: "x" }], output: [{ name: "y" }],
 *   node: [{ input: ["nope"], output: ["y"], name: "r", opType: "Relu", domain: "", attribute: [] }] };
 * try {
 *   validateGraph(g);
 *   throw new Error("should fail");
 * } catch (e) {
 *   if (!String(e).includes("nope")) throw e;
 * }
 * ```
 */
export function validateGraph(
  g: GraphProto,
  outerScope: { has(name: string): boolean } = new Set<string>(),
): void {
  const where = `graph "${g.name}"`;
  const defined = new Map<string, string>();
  const define = (name: string, by: string) => {
    if (!name) return;
    const prev = defined.get(name);
    if (prev !== undefined && !(prev === "graph input" && by === "initializer")) {
      throw new QuantlabError(
        "MALFORMED_MODEL",
        `${where}: value "${name}" is defined twice (by ${prev} and by ${by})`,
      );
    }
    defined.set(name, by);
  };
  for (const v of g.input) define(v.name, "graph input");
  for (const t of g.initializer) {
    if (!t.name) throw new QuantlabError("MALFORMED_MODEL", `${where}: an initializer has no name`);
    define(t.name, "initializer");
  }
  g.node.forEach((n, i) => {
    if (!n.opType) throw new QuantlabError("MALFORMED_MODEL", `${where}: node #${i} has no op_type`);
    for (const o of n.output) define(o, nodeLabel(n, i));
  });
  // A layered view, not a copy: nested subgraphs (If/Loop bodies) cost their own size, not the outer scope's.
  const scope = { has: (x: string) => defined.has(x) || outerScope.has(x) };
  g.node.forEach((n, i) => {
    for (const x of n.input) {
      if (x && !scope.has(x)) {
        throw new QuantlabError(
          "MALFORMED_MODEL",
          `${where}: ${nodeLabel(n, i)} reads "${x}", which nothing defines (dangling input)`,
        );
      }
    }
    for (const a of n.attribute) for (const sg of subgraphsOf(a)) validateGraph(sg, scope);
  });
  for (const v of g.output) {
    if (!scope.has(v.name)) {
      throw new QuantlabError(
        "MALFORMED_MODEL",
        `${where}: graph output "${v.name}" is not produced by any node or input`,
      );
    }
  }
  topologicalOrder(g, outerScope);
}

/**
 * Find an attribute by name.
 *
 * @example
 * ```ts
 * import { getAttribute, intAttr } from "./graph.ts";
 * const n = { input: [], output: [], name: "", opType: "Conv", domain: "", attribute: [intAttr("group", 2)] };
 * if (getAttribute(n, "group")?.i !== 2 || getAttribute(n, "pads") !== undefined) throw new Error("bad");
 * ```
 */
export function getAttribute(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute.find((a) => a.name === name);
}

/**
 * An INT attribute, or `fallback` when absent.
 *
 * @example
 * ```ts
 * import { attrInt, intAttr } from "./graph.ts";
 * const n = { input: [], output: [], name: "", opType: "Gemm", domain: "", attribute: [intAttr("transB", 1)] };
 * if (attrInt(n, "transB", 0) !== 1 || attrInt(n, "transA", 0) !== 0) throw new Error("bad");
 * ```
 */
export function attrInt(n: NodeProto, name: string, fallback: number): number {
  const a = getAttribute(n, name);
  return a?.i ?? fallback;
}

/**
 * An INTS attribute, or `fallback` when absent.
 *
 * @example
 * ```ts
 * import { attrInts, intsAttr } from "./graph.ts";
 * const n = { input: [], output: [], name: "", opType: "Conv", domain: "", attribute: [intsAttr("pads", [1, 1, 1, 1])] };
 * if (attrInts(n, "pads", []).join() !== "1,1,1,1" || attrInts(n, "strides", [1, 1]).join() !== "1,1") {
 *   throw new Error("bad");
 * }
 * ```
 */
export function attrInts(n: NodeProto, name: string, fallback: number[]): number[] {
  return getAttribute(n, name)?.ints ?? fallback;
}

/**
 * A FLOAT attribute, or `fallback` when absent.
 *
 * @example
 * ```ts
 * import { attrFloat, floatAttr } from "./graph.ts";
 * const n = { input: [], output: [], name: "", opType: "LeakyRelu", domain: "", attribute: [floatAttr("alpha", 0.5)] };
 * if (attrFloat(n, "alpha", 0.01) !== 0.5 || attrFloat(n, "beta", 1) !== 1) throw new Error("bad");
 * ```
 */
export function attrFloat(n: NodeProto, name: string, fallback: number): number {
  return getAttribute(n, name)?.f ?? fallback;
}

/**
 * A STRING attribute decoded as UTF-8, or `fallback` when absent.
 *
 * @example
 * ```ts
 * import { attrString } from "./graph.ts";
 * import { AttributeType } from "./proto.ts";
 * const valid = { name: "auto_pad", type: AttributeType.STRING, s: new TextEncoder().encode("VALID") };
 * const n = { input: [], output: [], name: "", opType: "Conv", domain: "", attribute: [valid] };
 * if (attrString(n, "auto_pad", "NOTSET") !== "VALID" || attrString(n, "mode", "x") !== "x") throw new Error("bad");
 * ```
 */
export function attrString(n: NodeProto, name: string, fallback: string): string {
  const s = getAttribute(n, name)?.s;
  return s ? new TextDecoder().decode(s) : fallback;
}

/**
 * Make an INT attribute.
 *
 * @example
 * ```ts
 * import { intAttr } from "./graph.ts";
 * import { AttributeType } from "./proto.ts";
 * const a = intAttr("axis", 1);
 * if (a.name !== "axis" || a.type !== AttributeType.INT || a.i !== 1) throw new Error("bad");
 * ```
 */
export function intAttr(name: string, i: number): AttributeProto {
  return { name, type: AttributeType.INT, i };
}

/**
 * Make an INTS attribute.
 *
 * @example
 * ```ts
 * import { intsAttr } from "./graph.ts";
 * import { AttributeType } from "./proto.ts";
 * const a = intsAttr("perm", [1, 0]);
 * if (a.type !== AttributeType.INTS || a.ints?.join() !== "1,0") throw new Error("bad");
 * ```
 */
export function intsAttr(name: string, ints: number[]): AttributeProto {
  return { name, type: AttributeType.INTS, ints };
}

/**
 * Make a FLOAT attribute.
 *
 * @example
 * ```ts
 * import { floatAttr } from "./graph.ts";
 * import { AttributeType } from "./proto.ts";
 * const a = floatAttr("alpha", 0.5);
 * if (a.type !== AttributeType.FLOAT || a.f !== 0.5) throw new Error("bad");
 * ```
 */
export function floatAttr(name: string, f: number): AttributeProto {
  return { name, type: AttributeType.FLOAT, f };
}

/**
 * Adds nodes and initializers to a graph with fresh, collision-free names.
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./graph.ts";
 * import type { GraphProto } from "./proto.ts";
 * const g: GraphProto = { name: "g", node: [], initializer: [], input: [{ name: "x" }], output: [], valueInfo: [] };
 * const b = new GraphBuilder(g);
 * const w = b.initializer("x", new Float32Array([2]), [1]);
 * const [y] = b.node("Mul", ["x", w]);
 * if (w === "x" || g.node.length !== 1 || g.node[0].output[0] !== y) throw new Error("bad");
 * ```
 */
export class GraphBuilder {
  #used = new Set<string>();

  /** Wrap `graph` (mutated in place). */
  constructor(readonly graph: GraphProto) {
    for (const v of graph.input) this.#used.add(v.name);
    for (const v of graph.output) this.#used.add(v.name);
    for (const v of graph.valueInfo) this.#used.add(v.name);
    for (const t of graph.initializer) this.#used.add(t.name);
    for (const n of graph.node) {
      for (const o of n.output) this.#used.add(o);
      for (const x of n.input) this.#used.add(x);
      if (n.name) this.#used.add(n.name);
    }
  }

  /** A name not yet used in the graph, based on `base`. */
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.#used.has(name); k++) name = `${base}_${k}`;
    this.#used.add(name);
    return name;
  }

  /** Add an initializer named after `base` (made unique); returns its name. */
  initializer(base: string, values: TensorValues, dims: readonly number[], dataType?: number): string {
    const name = this.fresh(base);
    this.graph.initializer.push(makeTensorProto(name, values, dims, dataType));
    return name;
  }

  /**
   * Make a node (outputs named after the op unless given); appended unless `at` gives an index in `graph.node`.
   * Returns the output names.
   */
  node(
    opType: string,
    inputs: string[],
    options: { outputs?: string[]; attributes?: AttributeProto[]; domain?: string; name?: string; at?: number } = {},
  ): string[] {
    const outputs = options.outputs ?? [this.fresh(`${options.name ?? opType}_out`)];
    for (const o of outputs) this.#used.add(o);
    const node: NodeProto = {
      input: inputs,
      output: outputs,
      name: this.fresh(options.name ?? opType),
      opType,
      domain: options.domain ?? "",
      attribute: options.attributes ?? [],
    };
    if (options.at === undefined) this.graph.node.push(node);
    else this.graph.node.splice(options.at, 0, node);
    return outputs;
  }
}

/**
 * Find chains of nodes with the given op types where each node's first output feeds the next node's first
 * input and has no other consumer (nor is a graph output), e.g. `["Conv", "BatchNormalization", "Relu"]`.
 * Returns node indexes per match.
 *
 * @example
 * ```ts
 * import { matchChains } from "./graph.ts";
 * const node = (op: string, i: string, o: string) => ({ input: [i], output: [o], name: o, opType: op, domain: "", attribute: [] });
 * const g = { name: "g", initializer: [], valueInfo: [], input: [{ name: "x" }], output: [{ name: "c" }],
 *   node: [node("Conv", "x", "a"), node("BatchNormalization", "a", "b"), node("Relu", "b", "c")] };
 * if (matchChains(g, ["Conv", "BatchNormalization"]).length !== 1) throw new Error("bad");
 * ```
 */
export function matchChains(g: GraphProto, ops: readonly string[]): number[][] {
  const ix = indexGraph(g);
  const outputs = new Set(g.output.map((v) => v.name));
  const matches: number[][] = [];
  g.node.forEach((n, i) => {
    if (n.opType !== ops[0] || n.domain !== "") return;
    const chain = [i];
    let cur = n;
    for (let k = 1; k < ops.length; k++) {
      const out = cur.output[0];
      const cons = ix.consumers.get(out) ?? [];
      if (outputs.has(out) || cons.length !== 1) return;
      const next = g.node[cons[0]];
      if (next.opType !== ops[k] || next.domain !== "" || next.input[0] !== out) return;
      chain.push(cons[0]);
      cur = next;
    }
    matches.push(chain);
  });
  return matches;
}

/**
 * Remove nodes whose outputs nobody uses (not graph outputs), then unused initializers; returns the count.
 *
 * @example
 * ```ts
 * import { removeDeadNodes } from "./graph.ts";
 * const node = (i: string, o: string) => ({ input: [i], output: [o], name: o, opType: "Relu", domain: "", attribute: [] });
 * const g = { name: "g", initializer: [], valueInfo: [], input: [{ name: "x" }], output: [{ name: "y" }],
 *   node: [node("x", "y"), node("x", "dead")] };
 * if (removeDeadNodes(g) !== 1 || g.node.map((n) => n.name).join() !== "y") throw new Error("bad");
 * ```
 */
export function removeDeadNodes(g: GraphProto): number {
  let removed = 0;
  for (;;) {
    const ix = indexGraph(g);
    const outs = new Set(g.output.map((v) => v.name));
    const keep = g.node.filter((n) => n.output.some((o) => o && (outs.has(o) || ix.consumers.has(o))));
    if (keep.length === g.node.length) break;
    removed += g.node.length - keep.length;
    g.node = keep;
  }
  const used = new Set<string>(g.output.map((v) => v.name));
  for (const n of g.node) for (const x of n.input) used.add(x);
  const collect = (sg: GraphProto) => {
    for (const n of sg.node) {
      for (const x of n.input) used.add(x);
      for (const a of n.attribute) for (const s of subgraphsOf(a)) collect(s);
    }
  };
  for (const n of g.node) for (const a of n.attribute) for (const s of subgraphsOf(a)) collect(s);
  const dropped = new Set(g.initializer.filter((t) => !used.has(t.name)).map((t) => t.name));
  g.initializer = g.initializer.filter((t) => !dropped.has(t.name));
  g.input = g.input.filter((v) => !dropped.has(v.name));
  return removed;
}
