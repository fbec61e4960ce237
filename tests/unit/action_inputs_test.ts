import assert from "node:assert/strict";
import { CdError } from "../../lib/errors.ts";
import { parsePyproject } from "../../reconcile/desired.ts";
import { pullRequestOf, readActionInputs, splitEnvironments } from "../../action/inputs.ts";
import { envPaths, withDesiredCec, workspacePaths } from "../../reconcile/paths.ts";
import {
  annotationPath,
  endGroup,
  errorCommand,
  formatOutputs,
  pyprojectLocations,
  startGroup,
  warningCommand,
} from "../../action/workflow_commands.ts";

Deno.test("inputs: GitHub's dashed INPUT_ names and the underscore form; defaults", () => {
  const a = readActionInputs({
    INPUT_COMMAND: "drift",
    "INPUT_GITHUB-TOKEN": " t1 ",
    "INPUT_WORKING-DIRECTORY": "/w",
    "INPUT_DRIFT-LABEL": "gpu-drift",
    INPUT_COMMENT: "False",
    GITHUB_SERVER_URL: "https://github.com",
    GITHUB_REPOSITORY: "o/r",
    GITHUB_RUN_ID: "9",
  }, "/cwd");
  assert.equal(a.token, "t1");
  assert.equal(a.workingDirectory, "/w");
  assert.equal(a.driftLabel, "gpu-drift");
  assert.equal(a.comment, false);
  assert.equal(a.runUrl, "https://github.com/o/r/actions/runs/9");
  const b = readActionInputs({
    INPUT_COMMAND: "plan",
    INPUT_GITHUB_TOKEN: "t2",
    INPUT_WORKING_DIRECTORY: "/u",
  }, "/cwd");
  assert.equal(b.token, "t2");
  assert.equal(b.workingDirectory, "/u");
  assert.equal(b.comment, true);
  assert.equal(b.driftLabel, "comfydock-drift");
  assert.equal(b.apiUrl, "https://api.github.com");
  const c = readActionInputs({ INPUT_COMMAND: "apply", GITHUB_TOKEN: "t3", GITHUB_WORKSPACE: "/ws" }, "/cwd");
  assert.equal(c.token, "t3");
  assert.equal(c.workingDirectory, "/ws");
  assert.throws(
    () => readActionInputs({ INPUT_COMMAND: "plan", INPUT_COMMENT: "yes" }, "/"),
    (e: unknown) => e instanceof CdError && /input 'comment' is 'yes', not true or false/.test(e.message),
  );
  assert.throws(() => readActionInputs({}, "/"), /input 'command' is not set/);
});

Deno.test("inputs: machine, workspace, locked, approved-plan, untrusted", () => {
  const d = readActionInputs({ INPUT_COMMAND: "apply", HOME: "/home/runner" }, "/cwd", "gpu-box");
  assert.equal(d.machine, "gpu-box", "the host name when the runner has no name");
  assert.equal(d.locked, true, "--locked is the Action's default");
  assert.equal(d.approvedPlan, "auto-approve");
  assert.equal(d.untrusted, false);
  assert.equal(d.home, undefined);
  const e = readActionInputs({
    INPUT_COMMAND: "apply",
    RUNNER_NAME: "gpu-1",
    INPUT_LOCKED: "false",
    "INPUT_APPROVED-PLAN": "required",
    INPUT_WORKSPACE: "~/comfydock",
    HOME: "/home/runner",
    COMFYDOCK_HOME: "/elsewhere",
  }, "/cwd");
  assert.equal(e.machine, "gpu-1");
  assert.equal(e.locked, false);
  assert.equal(e.approvedPlan, "required");
  assert.equal(
    e.home,
    "/home/runner/comfydock",
    "~ is the runner user's home; the input beats COMFYDOCK_HOME",
  );
  assert.equal(
    readActionInputs({ INPUT_COMMAND: "plan", INPUT_MACHINE: "render", RUNNER_NAME: "r" }, "/").machine,
    "render",
  );
  assert.equal(readActionInputs({ INPUT_COMMAND: "plan", COMFYDOCK_HOME: "ws" }, "/cwd").home, "/cwd/ws");
  assert.equal(readActionInputs({ INPUT_COMMAND: "validate" }, "/").command, "validate");
  assert.throws(
    () => readActionInputs({ INPUT_COMMAND: "apply", INPUT_APPROVED_PLAN: "yes" }, "/"),
    /input 'approved-plan' is 'yes', not auto-approve or required/,
  );
});

Deno.test("environments: newline or comma separated, trimmed, deduplicated", () => {
  assert.deepEqual(splitEnvironments(" a/.cec ,b\n\n c \na/.cec"), ["a/.cec", "b", "c"]);
  assert.deepEqual(splitEnvironments(""), []);
});

Deno.test("pull request number, head sha and fork from the event payload", () => {
  assert.deepEqual(
    pullRequestOf("pull_request", { number: 5, pull_request: { number: 5, head: { sha: "abc" } } }),
    { number: 5, headSha: "abc", fork: false },
  );
  const pr = (head: unknown) => ({
    pull_request: { number: 6, head: { sha: "d", repo: head }, base: { repo: { full_name: "acme/studio" } } },
  });
  assert.equal(pullRequestOf("pull_request", pr({ full_name: "acme/studio", fork: false }))?.fork, false);
  assert.equal(pullRequestOf("pull_request", pr({ full_name: "someone/studio", fork: true }))?.fork, true);
  // A fork's payload without the flag, and a deleted fork (head.repo null), are forks too.
  assert.equal(pullRequestOf("pull_request_target", pr({ full_name: "someone/studio" }))?.fork, true);
  assert.equal(pullRequestOf("pull_request", pr(null))?.fork, true);
  assert.equal(pullRequestOf("push", { number: 5 }), null);
  assert.equal(pullRequestOf("pull_request", {}), null);
});

Deno.test("a checkout's .cec as desired state: only the .cec paths move, the environment stays in the workspace", () => {
  const env = envPaths(workspacePaths("/home/ws"), "prod");
  const p = withDesiredCec(env, "/repo/envs/prod/.cec");
  assert.equal(p.name, "prod");
  assert.equal(p.pyproject, "/repo/envs/prod/.cec/pyproject.toml");
  assert.equal(p.uvLock, "/repo/envs/prod/.cec/uv.lock");
  assert.equal(p.cecWorkflows, "/repo/envs/prod/.cec/workflows");
  assert.equal(p.ignoreFile, "/repo/envs/prod/.cec/.comfydockignore");
  assert.equal(p.root, "/home/ws/environments/prod");
  assert.equal(p.customNodes, "/home/ws/environments/prod/ComfyUI/custom_nodes");
  assert.equal(p.venv, "/home/ws/environments/prod/.venv");
  assert.equal(p.state, "/home/ws/environments/prod/.comfydock");
});

Deno.test("GITHUB_OUTPUT entries use the heredoc form, safe for multi-line values", () => {
  const text = formatOutputs({ changes: "true", "plan-json": "/tmp/p.json", note: "a\nb" });
  const m = [...text.matchAll(/^([\w-]+)<<(ghadelimiter_[0-9a-f-]{36})\n([\s\S]*?)\n\2\n/gm)];
  assert.deepEqual(m.map((x) => [x[1], x[3]]), [["changes", "true"], ["plan-json", "/tmp/p.json"], [
    "note",
    "a\nb",
  ]]);
});

Deno.test("::error commands escape data and properties", () => {
  assert.equal(
    errorCommand({ file: "a,b:c.toml", line: 3, col: 2, title: "T", message: "50%\nnext" }),
    "::error file=a%2Cb%3Ac.toml,line=3,col=2,title=T::50%25%0Anext",
  );
  assert.equal(errorCommand({ message: "plain" }), "::error::plain");
  assert.equal(warningCommand({ title: "a, b", message: "x\ny" }), "::warning title=a%2C b::x%0Ay");
  assert.equal(startGroup("apply prod\n"), "::group::apply prod%0A");
  assert.equal(endGroup(), "::endgroup::");
});

const TOML = `[project]
name = "x"

[tool.comfydock]
comfyui_version = "v1"
comfyui_commit = "nope"
python_version = "3.12"

[tool.comfydock.nodes.impact]
source = "registry"
version = ""

[tool.comfydock.models."sd.xl"]
category = "checkpoints"
filename = "a.safetensors"
`;

Deno.test("pyproject schema errors from the real parser map to the lines of their keys", () => {
  let error: CdError | undefined;
  try {
    parsePyproject(TOML, "/repo/.cec/pyproject.toml");
  } catch (e) {
    error = e as CdError;
  }
  assert.ok(error instanceof CdError && error.code === "PYPROJECT_INVALID");
  // The line the error itself names (file:line:), where the key is written.
  const locs = pyprojectLocations(error).map((l) => [l.file, l.key, l.line]);
  assert.deepEqual(
    locs.sort(),
    [
      ["/repo/.cec/pyproject.toml", "tool.comfydock.comfyui_commit", 6],
      ["/repo/.cec/pyproject.toml", "tool.comfydock.models.sd.xl", 13],
      ["/repo/.cec/pyproject.toml", "tool.comfydock.nodes.impact.version", 11],
    ].sort(),
  );
  assert.equal(annotationPath("/repo/.cec/pyproject.toml", "/repo"), ".cec/pyproject.toml");
  assert.equal(annotationPath("/elsewhere/pyproject.toml", "/repo"), "/elsewhere/pyproject.toml");
});

Deno.test("pyproject syntax errors from the real parser keep their line and column", () => {
  let error: CdError | undefined;
  try {
    parsePyproject('[project]\nname = "a"\nname = "b"\n', "/r/pyproject.toml");
  } catch (e) {
    error = e as CdError;
  }
  const [loc] = pyprojectLocations(error!);
  assert.equal(loc.file, "/r/pyproject.toml");
  assert.equal(loc.line, 3);
  assert.ok(loc.col! >= 1);
  assert.deepEqual(pyprojectLocations(new CdError("OTHER", "x.toml:1:1: nope")), []);
});
