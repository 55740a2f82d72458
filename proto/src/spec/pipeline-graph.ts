import type { PipelineSpec } from "../gen/mottainai/v1/pipeline_pb.js";
import { keyPath, quote, suggestion } from "./field-readers.js";
import { SpecError } from "./spec-error.js";

/**
 * The dependency graph of a pipeline: which members wait for which. Every pipeline runs as this
 * graph; chain, group and chord are only ways of writing it.
 */
export interface PipelineGraph {
  /** Member keys in the order the file lists them: chain, then group, then chord. */
  order: string[];
  /** Member key → the keys it waits for (each once, in the order they were first named). */
  parents: Record<string, string[]>;
}

/**
 * Compiles a pipeline's lists and `depends_on` edges into its graph: each chain member depends
 * on the one before it, group members depend on nothing, each chord member depends on every
 * group member; a task's own `depends_on` adds to that. The spec's lists must already be valid
 * (see parsePipelineFile: every listed key names a task, listed once).
 *
 * @throws SpecError at `tasks.<key>.depends_on[i]` for a key that names no task, and at
 * `tasks.<key>.depends_on` for a cycle, with the cycle's keys in order (`a → b → a`: a waits for b, b for a).
 */
export function compilePipelineGraph(spec: PipelineSpec): PipelineGraph {
  const order = [...spec.chain, ...spec.group, ...spec.chord];
  const parents = new Map<string, string[]>(order.map((key) => [key, []]));
  const add = (key: string, parent: string) => {
    const list = parents.get(key);
    if (list && !list.includes(parent)) list.push(parent);
  };
  spec.chain.forEach((key, i) => {
    const previous = spec.chain[i - 1];
    if (previous !== undefined) add(key, previous);
  });
  for (const key of spec.chord) for (const parent of spec.group) add(key, parent);
  for (const key of order) {
    const task = spec.tasks[key];
    task?.dependsOn.forEach((parent, i) => {
      if (!order.includes(parent)) {
        const field = `${keyPath(keyPath("tasks", key), "depends_on")}[${i}]`;
        throw new SpecError(field, `no task ${quote(parent)} in the pipeline${suggestion(parent, order)}`);
      }
      add(key, parent);
    });
  }
  const cycle = findCycle(order, parents);
  if (cycle) {
    const [first] = cycle;
    throw new SpecError(
      keyPath(keyPath("tasks", first ?? ""), "depends_on"),
      `dependency cycle: ${cycle.map((k) => quote(k)).join(" → ")} (each waits for the next)`,
    );
  }
  return { order, parents: Object.fromEntries(parents) };
}

/** The first cycle found, as keys from a member back to itself (`[a, b, a]`), or undefined. */
function findCycle(order: readonly string[], parents: ReadonlyMap<string, string[]>): string[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (key: string): string[] | undefined => {
    const seen = state.get(key);
    if (seen === "done") return undefined;
    if (seen === "visiting") return [...path.slice(path.indexOf(key)), key];
    state.set(key, "visiting");
    path.push(key);
    for (const parent of parents.get(key) ?? []) {
      const cycle = visit(parent);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(key, "done");
    return undefined;
  };
  for (const key of order) {
    const cycle = visit(key);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * The members in an order where each comes after all of its parents (stable: among members
 * that are ready together, the file's order). The graph must be acyclic (compilePipelineGraph).
 */
export function topologicalOrder(graph: PipelineGraph): string[] {
  const done = new Set<string>();
  const result: string[] = [];
  while (result.length < graph.order.length) {
    const before = result.length;
    for (const key of graph.order) {
      const parents = Object.hasOwn(graph.parents, key) ? graph.parents[key] : undefined;
      if (done.has(key) || !(parents ?? []).every((p) => done.has(p))) continue;
      done.add(key);
      result.push(key);
    }
    if (result.length === before) throw new Error("topologicalOrder: the graph has a cycle");
  }
  return result;
}
