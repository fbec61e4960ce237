/**
 * The folder layout is the architecture (DESIGN §2). This test reads every import of the product code
 * (static and dynamic) and fails on a rule break, so the layering cannot rot silently:
 *   faces (cmd/, action/) -> application layer (workspace/) -> core (reconcile/) + providers/ + views/ -> lib/
 * and no import cycles, nothing below the faces reading the process environment or printing.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..");
const PRODUCT = ["cmd", "action", "workspace", "reconcile", "providers", "views", "lib"];

/** Which top-level folders each layer may import (its own included). */
const ALLOWED: Record<string, string[]> = {
  lib: ["lib"],
  reconcile: ["reconcile", "lib"],
  views: ["views", "reconcile", "lib"],
  providers: ["providers", "reconcile", "lib"],
  workspace: ["workspace", "providers", "reconcile", "views", "lib"],
  action: ["action", "workspace", "providers", "reconcile", "views", "lib", "cmd"],
  cmd: ["cmd", "action", "workspace", "providers", "reconcile", "views", "lib"],
};

async function productFiles(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(rel);
      else if (e.name.endsWith(".ts")) out.push(rel);
    }
  };
  for (const d of PRODUCT) await walk(d);
  return out.sort();
}

/** Relative specifiers of `import ... from`, `export ... from`, `import("...")` and `import "..."`. */
function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specs = [
    ...code.matchAll(/\b(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g),
  ].map((m) => m[1]);
  return [...new Set(specs)];
}

const files = await productFiles();
const graph = new Map<string, string[]>();
for (const f of files) {
  const text = await Deno.readTextFile(join(ROOT, f));
  graph.set(
    f,
    importsOf(text).map((s) => relative(ROOT, resolve(join(ROOT, dirname(f)), s))).filter((t) =>
      t.endsWith(".ts")
    ),
  );
}
const layer = (f: string) => f.split("/")[0];

Deno.test("every import goes down the layers: faces -> workspace -> reconcile/providers/views -> lib", () => {
  const breaks: string[] = [];
  for (const [f, targets] of graph) {
    for (const t of targets) {
      if (!PRODUCT.includes(layer(t))) continue; // deno.json and the like
      if (!ALLOWED[layer(f)].includes(layer(t))) breaks.push(`${f} -> ${t}`);
    }
  }
  assert.deepEqual(breaks, [], `imports that break DESIGN §2:\n${breaks.join("\n")}`);
});

Deno.test("the core (reconcile/) is a leaf: it imports only lib/ and itself", () => {
  const core = [...graph].filter(([f]) => layer(f) === "reconcile");
  assert.ok(core.length > 5, "the core was found");
  for (const [f, targets] of core) {
    for (const t of targets) assert.ok(["reconcile", "lib"].includes(layer(t)), `${f} imports ${t}`);
  }
});

Deno.test("no import cycles among product files", () => {
  // Tarjan's strongly connected components: any component of more than one file is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.map((c) => c.join(" <-> ")).join("\n")}`);
});

Deno.test("below the faces nothing reads the process environment or prints", async () => {
  const offenders: string[] = [];
  for (const f of graph.keys()) {
    if (["cmd", "action"].includes(layer(f)) || f === "lib/ui.ts") continue;
    const text = await Deno.readTextFile(join(ROOT, f));
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    if (/\bDeno\.env\b/.test(code)) offenders.push(`${f}: reads Deno.env`);
    if (/\bconsole\.(log|error|warn|info)\b/.test(code)) offenders.push(`${f}: prints with console`);
    // A type (the colour names a renderer is painted with) is not the printer.
    if (/^import (?!type )[^;]*from "[./]*lib\/ui\.ts"/m.test(code)) {
      offenders.push(`${f}: imports lib/ui.ts (the faces' printer)`);
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("the rules above can fail: a made-up upward import is caught", () => {
  const fake = new Map([["reconcile/x.ts", ["workspace/session.ts"]]]);
  const breaks = [...fake].flatMap(([f, ts]) => ts.filter((t) => !ALLOWED[layer(f)].includes(layer(t))));
  assert.deepEqual(breaks, ["workspace/session.ts"]);
});
