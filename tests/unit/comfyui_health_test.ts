/**
 * Reading ComfyUI's own start-up lines (the fallback when the loader hook does not take) and turning a run
 * into a health result. The log text is in the exact format ComfyUI's nodes.py prints.
 */
import assert from "node:assert/strict";
import {
  buildResult,
  installScriptNotes,
  missingModule,
  packLine,
  parseStartupLog,
} from "../../providers/comfyui/health.ts";
import { envPaths, workspacePaths } from "../../reconcile/paths.ts";

const paths = envPaths(workspacePaths("/ws"), "studio");
const CN = paths.customNodes;

// As ComfyUI 0.3.6x-0.3.7x prints it (logging format "%(message)s"), with a colour code a pack added and
// a log prefix some launchers put in front.
const LOG = [
  "Python version: 3.12.1 (main, Jan  1 2025, 00:00:00) [GCC 12.2.0]",
  "Traceback (most recent call last):",
  `  File "${CN}/ComfyUI-KJNodes/__init__.py", line 1, in <module>`,
  "    from .nodes.nodes import *",
  "ModuleNotFoundError: No module named 'cv2'",
  "",
  `Cannot import ${CN}/ComfyUI-KJNodes module for custom nodes: No module named 'cv2'`,
  `WARNING:root:Cannot import ${CN}/impact-pack module for custom nodes: cannot import name 'x' from 'y'`,
  "\x1b[36m[rgthree] Loaded 42 fantastic nodes.\x1b[0m",
  "",
  "Import times for custom nodes:",
  `   0.0 seconds: ${CN}/websocket_image_save.py`,
  `   0.0 seconds (IMPORT FAILED): ${CN}/ComfyUI-KJNodes`,
  `[2025-10-01 12:00:00.000] \x1b[0m   1.3 seconds (IMPORT FAILED): ${CN}/impact-pack`,
  `  12.7 seconds: ${CN}/rgthree-comfy`,
  "",
  "Context impl SQLiteImpl.",
].join("\n");

Deno.test("parseStartupLog: the import-times table with the error line of each failed pack", () => {
  assert.deepEqual(parseStartupLog(LOG), [
    { path: `${CN}/websocket_image_save.py`, ok: true, seconds: 0, error: null },
    { path: `${CN}/ComfyUI-KJNodes`, ok: false, seconds: 0, error: "No module named 'cv2'" },
    { path: `${CN}/impact-pack`, ok: false, seconds: 1.3, error: "cannot import name 'x' from 'y'" },
    { path: `${CN}/rgthree-comfy`, ok: true, seconds: 12.7, error: null },
  ]);
  assert.deepEqual(parseStartupLog("Starting server\n\nTo see the GUI go to: http://127.0.0.1:8188\n"), []);
  assert.deepEqual(parseStartupLog(LOG.replaceAll("\n", "\r\n")).length, 4);
});

Deno.test("missingModule: the module a ModuleNotFoundError names (the last one in a traceback)", () => {
  assert.equal(missingModule("ModuleNotFoundError: No module named 'cv2'"), "cv2");
  assert.equal(missingModule("No module named 'a'\n...\nNo module named \"skimage.io\""), "skimage.io");
  assert.equal(missingModule("ImportError: libGL.so.1: cannot open shared object file"), null);
  assert.equal(missingModule(null), null);
});

const RUN = {
  output: LOG,
  exitCode: 0,
  timedOut: false,
  timeoutMs: 300_000,
  packIds: { "ComfyUI-KJNodes": "comfyui-kjnodes" },
  durationMs: 4200,
  checkedAt: "2025-10-01T12:00:00.000Z",
};

Deno.test("buildResult: without the loader hook, the log gives status and errors (no class lists)", () => {
  const r = buildResult(paths, { ...RUN, report: null });
  assert.equal(r.method, "log");
  assert.equal(r.started, true);
  assert.equal(r.healthy, false);
  assert.deepEqual(r.packs.map((p) => [p.dir, p.id, p.status, p.missing_module]), [
    ["ComfyUI-KJNodes", "comfyui-kjnodes", "failed", "cv2"],
    ["impact-pack", null, "failed", null],
    ["rgthree-comfy", null, "loaded", null],
    ["websocket_image_save.py", null, "loaded", null],
  ]);
  assert.ok(r.packs.every((p) => p.classes === null));
  assert.equal(
    packLine(r.packs[0]),
    "ComfyUI-KJNodes (node.comfyui-kjnodes): IMPORT FAILED: missing module 'cv2'",
  );
  assert.equal(packLine(r.packs[2]), "rgthree-comfy: loaded");
});

Deno.test("buildResult: the hook's report wins; ComfyUI's own comfy_extras loads are not packs", () => {
  const r = buildResult(paths, {
    ...RUN,
    report: {
      hooked: true,
      loading: null,
      error: null,
      traceback: null,
      exit_code: 0,
      packs: [
        {
          path: "/ws/environments/studio/ComfyUI/comfy_extras/nodes_wan.py",
          ok: true,
          classes: ["WanX"],
          seconds: 0.1,
          log: [],
        },
        { path: `${CN}/ComfyUI-KJNodes`, ok: true, classes: ["GetNode", "SetNode"], seconds: 0.5, log: [] },
      ],
    },
  });
  assert.equal(r.method, "bootstrap");
  assert.equal(r.healthy, true);
  assert.deepEqual(r.packs.map((p) => [p.dir, p.classes]), [["ComfyUI-KJNodes", ["GetNode", "SetNode"]]]);
});

Deno.test("buildResult: a start that exits non-zero is unhealthy with the exception line", () => {
  const r = buildResult(paths, {
    ...RUN,
    output:
      "Traceback (most recent call last):\n  File \"main.py\", line 1\nModuleNotFoundError: No module named 'requests'\n",
    exitCode: 1,
    report: {
      hooked: false,
      loading: null,
      packs: [],
      error: "ModuleNotFoundError: No module named 'requests'",
      traceback: "...",
      exit_code: 1,
    },
  });
  assert.equal(r.started, false);
  assert.equal(r.healthy, false);
  assert.equal(r.error, "ModuleNotFoundError: No module named 'requests'");
  assert.equal(r.missing_module, "requests");
});

Deno.test("installScriptNotes: one note per pack, addressed to the node, saying how to run the script", () => {
  const notes = installScriptNotes("/env/.venv/bin/python", [{
    dir: "ComfyUI-Impact-Pack",
    id: "comfyui-impact-pack",
  }]);
  assert.equal(notes.length, 1);
  assert.match(notes[0], /^node\.comfyui-impact-pack: has an install\.py that ComfyDock never runs;/);
  assert.match(notes[0], /'\/env\/\.venv\/bin\/python custom_nodes\/ComfyUI-Impact-Pack\/install\.py'/);
});
