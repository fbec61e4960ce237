/** The link fallbacks (symlink -> hard link -> copy) as a pure decision, so the Windows path runs here too. */
import assert from "node:assert/strict";
import {
  classifyLinkError,
  type LinkFailure,
  type LinkKind,
  type LinkOs,
  nextLinkKind,
} from "../../providers/models/link.ts";

/** Runs the decision loop against a world where each way of linking fails as given (absent: succeeds). */
function outcome(os: LinkOs, fails: Partial<Record<LinkKind, LinkFailure>>): string {
  const failures: LinkFailure[] = [];
  const tried: string[] = [];
  for (let kind = nextLinkKind(os, failures); kind !== "fail"; kind = nextLinkKind(os, failures)) {
    tried.push(kind);
    const f = fails[kind];
    if (!f) return tried.join(" > ");
    failures.push(f);
  }
  return `${tried.join(" > ")} > fail`;
}

Deno.test("link fallbacks on Windows: no symlink privilege -> hard link; another volume -> copy", () => {
  assert.equal(outcome("windows", {}), "symlink");
  assert.equal(outcome("windows", { symlink: "not-permitted" }), "symlink > hardlink");
  // The privilege error has no stable class on Windows: any symlink failure falls back.
  assert.equal(outcome("windows", { symlink: "other" }), "symlink > hardlink");
  assert.equal(
    outcome("windows", { symlink: "not-permitted", hardlink: "cross-device" }),
    "symlink > hardlink > copy",
  );
  assert.equal(outcome("windows", { symlink: "other", hardlink: "other" }), "symlink > hardlink > copy");
  assert.equal(
    outcome("windows", { symlink: "other", hardlink: "cross-device", copy: "other" }),
    "symlink > hardlink > copy > fail",
  );
});

Deno.test("link fallbacks on Linux and macOS: only a file system without links falls back", () => {
  for (const os of ["linux", "darwin"] as const) {
    assert.equal(outcome(os, {}), "symlink");
    assert.equal(outcome(os, { symlink: "other" }), "symlink > fail", "read-only, disk full: reported");
    assert.equal(outcome(os, { symlink: "not-permitted" }), "symlink > hardlink");
    assert.equal(
      outcome(os, { symlink: "not-permitted", hardlink: "not-permitted" }),
      "symlink > hardlink > copy",
    );
    assert.equal(
      outcome(os, { symlink: "not-permitted", hardlink: "cross-device" }),
      "symlink > hardlink > copy",
    );
    assert.equal(outcome(os, { symlink: "not-permitted", hardlink: "other" }), "symlink > hardlink > fail");
  }
});

Deno.test("link fallbacks never overwrite an existing path and never copy a model that is gone", () => {
  for (const os of ["windows", "linux", "darwin"] as const) {
    assert.equal(outcome(os, { symlink: "exists" }), "symlink > fail");
    assert.equal(outcome(os, { symlink: "missing" }), "symlink > fail");
    assert.equal(outcome(os, { symlink: "not-permitted", hardlink: "exists" }), "symlink > hardlink > fail");
    assert.equal(outcome(os, { symlink: "not-permitted", hardlink: "missing" }), "symlink > hardlink > fail");
  }
});

Deno.test("link errors are classified by Deno error class and OS error code", () => {
  const withCode = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(classifyLinkError(new Deno.errors.AlreadyExists("x")), "exists");
  assert.equal(classifyLinkError(new Deno.errors.NotFound("x")), "missing");
  assert.equal(classifyLinkError(new Deno.errors.PermissionDenied("x")), "not-permitted");
  assert.equal(classifyLinkError(new Deno.errors.NotSupported("x")), "not-permitted");
  assert.equal(classifyLinkError(withCode("EPERM")), "not-permitted");
  assert.equal(classifyLinkError(withCode("EXDEV")), "cross-device");
  assert.equal(classifyLinkError(withCode("ENOSPC")), "other");
  assert.equal(classifyLinkError("not an error"), "other");
});
