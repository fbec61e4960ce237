/**
 * The analysis against the ComfyUI team's own workflow templates (every one their package's index.json
 * lists) and ComfyUI-Manager's extension-node-map.json, both from the packages their authors publish (see
 * fixtures/real_data.ts): every properties.models entry is found with its folder, the loader table agrees
 * with what the templates declare, and every node is classified.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { realData } from "../../fixtures/real_data.ts";
import {
  analyzeWorkflow,
  MODEL_LOADERS,
  parseWorkflowText,
  requirements,
} from "../../providers/workflows/analyze.ts";
import { NodePackResolver } from "../../providers/workflows/node_map.ts";

const TEMPLATES = await realData("workflowTemplates");
const NODE_MAP = await realData("extensionNodeMap");

interface TemplateNode {
  id: number | string;
  type: string;
  mode?: number;
  widgets_values?: unknown;
  properties?: { cnr_id?: string; models?: { name: string; directory: string; url?: string }[] };
}
interface Template {
  nodes: TemplateNode[];
  definitions?: { subgraphs?: { id: string; nodes: TemplateNode[] }[] };
}

/** The templates the authors publish, as their own index lists them (by category). */
const index = JSON.parse(Deno.readTextFileSync(join(TEMPLATES, "index.json"))) as {
  category: string;
  templates: { name: string }[];
}[];
const names = [...new Set(index.flatMap((c) => c.templates.map((t) => t.name)))].sort();
// Read once for the whole file.
const files = names.map((n) => `${n}.json`);
const texts = new Map(files.map((f) => [f, Deno.readTextFileSync(join(TEMPLATES, f))]));
const resolver = NodePackResolver.fromExtensionNodeMap(JSON.parse(Deno.readTextFileSync(NODE_MAP)));

/** Every node of a template with the id the analysis gives it, walked independently of the analysis. */
function allNodes(t: Template): { id: string; node: TemplateNode }[] {
  const out = t.nodes.map((node) => ({ id: String(node.id), node }));
  for (const s of t.definitions?.subgraphs ?? []) {
    for (const node of s.nodes) out.push({ id: `${s.id}:${node.id}`, node });
  }
  return out;
}

Deno.test("templates: every template the index lists is a UI workflow, and every workflow is listed", () => {
  assert.ok(files.length > 0, `${TEMPLATES}/index.json lists no templates`);
  for (const f of files) {
    const doc = JSON.parse(texts.get(f)!);
    assert.ok(Array.isArray(doc.nodes), `${f} is not a UI workflow`);
  }
  // Nothing in the folder escapes the tests: a workflow file is one the index names.
  for (const e of Deno.readDirSync(TEMPLATES)) {
    if (!e.name.endsWith(".json") || texts.has(e.name)) continue;
    const doc = JSON.parse(Deno.readTextFileSync(join(TEMPLATES, e.name)));
    assert.ok(!Array.isArray(doc?.nodes), `${e.name} is a workflow the index does not list`);
  }
});

Deno.test("templates: every properties.models entry is extracted with its folder, url and node", () => {
  let checked = 0;
  for (const f of files) {
    const t = JSON.parse(texts.get(f)!) as Template;
    const a = analyzeWorkflow(parseWorkflowText(texts.get(f)!, f), resolver, f);
    for (const { id, node } of allNodes(t)) {
      for (const m of node.properties?.models ?? []) {
        const found = a.models.find((r) =>
          r.node_id === id && r.name === m.name && r.category === m.directory
        );
        assert.ok(found, `${f}: node ${id} (${node.type}) model ${m.directory}/${m.name} not extracted`);
        assert.equal(found.url, m.url, `${f}: url of ${m.name}`);
        assert.equal(found.node_type, node.type);
        assert.equal(found.optional, node.mode === 2 || node.mode === 4, `${f}: optional flag of ${m.name}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 0, "no template declares a model: nothing was checked");
});

Deno.test(
  "templates: the loader table reads the same file the template declares in properties.models",
  () => {
    let checked = 0;
    for (const f of files) {
      const t = JSON.parse(texts.get(f)!) as Template;
      for (const { id, node } of allNodes(t)) {
        const specs = MODEL_LOADERS[node.type];
        const declared = node.properties?.models;
        if (!specs || !declared?.length || !Array.isArray(node.widgets_values)) continue;
        for (const spec of specs) {
          const value = node.widgets_values[spec.index];
          if (typeof value !== "string") continue;
          const match = declared.some((m) => m.name === value && m.directory === spec.category);
          assert.ok(match, `${f}: node ${id} ${node.type}.${spec.input}='${value}' is not ${spec.category}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 0, "no known loader with declared models: nothing was checked");
  },
);

Deno.test(
  "templates: every node is classified, comfy-core as core, subgraphs and notes as frontend",
  () => {
    const kinds: Record<string, number> = {};
    for (const f of files) {
      const t = JSON.parse(texts.get(f)!) as Template;
      const a = analyzeWorkflow(parseWorkflowText(texts.get(f)!, f), resolver, f);
      const subgraphIds = new Set((t.definitions?.subgraphs ?? []).map((s) => s.id));
      const expected = allNodes(t);
      assert.equal(a.format, "ui");
      assert.equal(a.nodes.length, expected.length, `${f}: node count`);
      const byId = new Map(a.nodes.map((n) => [n.id, n]));
      for (const { id, node } of expected) {
        const got = byId.get(id);
        assert.ok(got, `${f}: node ${id} missing`);
        assert.equal(got.type, node.type);
        kinds[got.kind] = (kinds[got.kind] ?? 0) + 1;
        if (
          subgraphIds.has(node.type) ||
          ["Note", "MarkdownNote", "Reroute", "PrimitiveNode"].includes(node.type)
        ) {
          assert.equal(got.kind, "frontend", `${f}: ${node.type} should be frontend`);
          assert.equal(got.package, null);
        } else if (node.properties?.cnr_id === "comfy-core") {
          assert.deepEqual([got.kind, got.package], ["core", "comfy-core"], `${f}: ${node.type}`);
        }
        if (got.kind === "custom" && !got.ambiguous) {
          assert.ok(got.package, `${f}: custom ${node.type} has no package`);
        }
        if (got.kind === "unknown") assert.equal(got.package, null);
        assert.equal(got.mode, node.mode === 4 ? "bypassed" : node.mode === 2 ? "muted" : "active");
      }
      const req = requirements(a);
      for (const p of req.packages) assert.ok(a.nodes.some((n) => n.package === p && n.kind === "custom"));
    }
    assert.ok(kinds.core > 0 && kinds.frontend > 0, JSON.stringify(kinds));
  },
);

Deno.test(
  "templates: random corruption of real templates gives a result or a CdError, never a crash",
  async () => {
    const { CdError } = await import("../../lib/errors.ts");
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const junk = [null, 0, -1, "x", [], {}, [[[]]], true, { nodes: 1 }, "embedding:"];
    let errors = 0;
    for (let i = 0; i < 300; i++) {
      const f = files[rand(files.length)];
      const doc = JSON.parse(texts.get(f)!);
      // Replace a few random values anywhere in the tree with junk of another type.
      for (let k = 0; k < 3; k++) {
        let cur: Record<string, unknown> = doc;
        for (let d = 0; d < 6; d++) {
          const keys = Object.keys(cur);
          if (keys.length === 0) break;
          const key = keys[rand(keys.length)];
          const next = cur[key];
          if (d === 5 || next === null || typeof next !== "object" || rand(4) === 0) {
            cur[key] = junk[rand(junk.length)];
            break;
          }
          cur = next as Record<string, unknown>;
        }
      }
      try {
        analyzeWorkflow(doc, resolver, f);
      } catch (e) {
        assert.ok(e instanceof CdError, `${f} mutation ${i}: ${e}`);
        errors++;
      }
    }
    assert.ok(errors > 0 && errors < 300, `${errors} of 300 mutations were rejected`);
  },
);
