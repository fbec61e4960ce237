/**
 * The conflict summary reads uv's resolution explanation: the packages of the conflict chain and the node
 * groups it runs through. The texts are uv's own (uv 0.9, `uv lock` on fixture wheels), markers included.
 */
import assert from "node:assert/strict";
import { CdError, isCdError } from "../../lib/errors.ts";
import { conflictError, explainConflict } from "../../providers/packages/resolve.ts";

const PYPROJECT = `[project]
name = "my-env"
dependencies = ["alpha", "numpy>=2"]
[dependency-groups]
node-old = ["oldnp"]
node-numpy = ["numpy"]
node-plain = ["epsilon"]
`;

// A node needs numpy<2 on Linux x86-64 only; the project needs numpy>=2; another node asks for any numpy.
const UV_MARKERS = `uv lock --python /usr/bin/python3.11 failed (exit 1):
Using CPython 3.11.7 interpreter at: /root/.pyenv/versions/3.11.7/bin/python3.11
error: No solution found when resolving dependencies
  cause: Because all versions of oldnp depend on numpy{platform_machine == 'x86_64' and sys_platform == 'linux'}<2 and my-env:node-old depends on oldnp, we can conclude that my-env:node-old depends on numpy<2.
         And because your project depends on numpy>=2, we can conclude that your project and my-env:node-old are incompatible.
         And because your project requires your project and my-env:node-old, we can conclude that your project's requirements are unsatisfiable.`;

Deno.test("conflict summary: markers are not packages; only groups in uv's chain are blamed", () => {
  assert.deepEqual(explainConflict(UV_MARKERS, "my-env"), {
    packages: ["numpy", "oldnp"],
    groups: ["node-old"],
  });
  const e = conflictError(new CdError("UV_FAILED", UV_MARKERS), PYPROJECT);
  assert.ok(isCdError(e) && e.code === "PACKAGES_CONFLICT");
  assert.match(
    e.message,
    /^Python requirements do not resolve: conflicting packages numpy, oldnp; requested by node group node-old\n/,
  );
  // node-numpy only asks for an unpinned numpy: it is not part of the conflict.
  assert.doesNotMatch(e.message.split("\n")[0], /sys-platform|platform-machine|node-numpy/);
  assert.match(e.hint ?? "", /remove or change one of: node-old \(/);
  assert.match(
    e.message,
    /numpy\{platform_machine == 'x86_64' and sys_platform == 'linux'\}<2/,
    "uv's text kept",
  );
});

Deno.test("conflict summary: two groups against each other, and a version that does not exist", () => {
  const twoGroups = `error: No solution found when resolving dependencies
  cause: Because my-env:node-a depends on libx==1.0.0 and my-env:node-b depends on libx==2.0.0, we can conclude that my-env:node-a and my-env:node-b are incompatible.
         And because your project requires my-env:node-a and my-env:node-b, we can conclude that your project's requirements are unsatisfiable.`;
  assert.deepEqual(explainConflict(twoGroups, "my-env"), {
    packages: ["libx"],
    groups: ["node-a", "node-b"],
  });
  const missing = `error: No solution found when resolving dependencies
  cause: Because there is no version of beta==9.9.9 and my-env:node-b depends on beta==9.9.9, we can conclude that my-env:node-b's requirements are unsatisfiable.`;
  assert.deepEqual(explainConflict(missing, "my-env"), { packages: ["beta"], groups: ["node-b"] });
});
