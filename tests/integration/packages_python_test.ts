/** Interpreter discovery on the real machine: real binaries, never pyenv shims, clear errors. */
import assert from "node:assert/strict";
import { isAbsolute } from "node:path";
import { isCdError } from "../../lib/errors.ts";
import { findPython, listPythons } from "../../providers/packages/python.ts";
import { run } from "../../lib/proc.ts";
import { testSettings } from "../../fixtures/app.ts";

const SYSTEM = testSettings().system;

Deno.test("findPython: an absolute real binary of the asked X.Y, whose version matches when run", async () => {
  const all = await listPythons(SYSTEM);
  assert.ok(all.length > 0);
  for (const p of all) {
    assert.ok(isAbsolute(p.path));
    assert.doesNotMatch(p.path, /[\\/]shims[\\/]/);
  }
  const asked = all[0].version.split(".").slice(0, 2).join(".");
  const py = await findPython(SYSTEM, asked);
  assert.match(py.version, new RegExp(`^${asked.replace(".", "\\.")}\\.\\d+$`));
  const r = await run(py.path, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]);
  assert.equal(r.stdout.trim(), py.version);
  assert.deepEqual(await findPython(SYSTEM, py.path), py, "an explicit interpreter path is accepted");
});

Deno.test("findPython: a missing version lists what exists; a malformed one says how to write it", async () => {
  await assert.rejects(() => findPython(SYSTEM, "3.2"), (e) => {
    assert.ok(isCdError(e) && e.code === "PYTHON_NOT_FOUND");
    assert.match(e.message, /Python 3\.2 is not installed on this machine \(found: 3\.\d+/);
    assert.match(e.hint ?? "", /never downloads Python/);
    return true;
  });
  await assert.rejects(
    () => findPython(SYSTEM, "three"),
    (e) => isCdError(e) && e.code === "PYTHON_VERSION_INVALID",
  );
});
