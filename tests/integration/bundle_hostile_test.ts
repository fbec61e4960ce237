/**
 * Hostile bundles, built here byte by byte: each one is rejected with an error naming the entry and the
 * rule, the staging dir is gone, nothing is written outside it, and an import leaves the workspace as it was.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { CdError } from "../../lib/errors.ts";
import { exists } from "../../lib/fsx.ts";
import { withTempDir } from "../../fixtures/tmp.ts";
import {
  cecPyproject,
  manifestEntry,
  type RawEntry,
  rawTar,
  rawTarGz,
  readTree,
} from "../../fixtures/bundle_archives.ts";
import { BundleManager } from "../../providers/bundles/bundle.ts";
import type { ArchiveLimits } from "../../lib/archive_limits.ts";
import { importEnvironment } from "../../workspace/import.ts";
import { workspacePaths } from "../../reconcile/paths.ts";
import { testApp } from "../../fixtures/app.ts";

const PYPROJECT = cecPyproject("hostile");
const GOOD_FILES = [
  { path: "cec/pyproject.toml", data: PYPROJECT },
  { path: "cec/uv.lock", data: "version = 1\n" },
  { path: "cec/workflows/a.json", data: '{"nodes":[]}' },
];
const goodEntries = (): RawEntry[] => GOOD_FILES.map((f) => ({ name: f.path, data: f.data }));

function withBig(): Uint8Array {
  const big = "x".repeat(5000);
  const files = [...GOOD_FILES, { path: "cec/workflows/big.json", data: big }];
  return rawTarGz([manifestEntry(files), ...goodEntries(), { name: "cec/workflows/big.json", data: big }]);
}

interface Case {
  name: string;
  bytes: () => Uint8Array;
  code: string;
  /** Fragments the message must contain (the entry and the rule). */
  says: (string | RegExp)[];
  limits?: Partial<ArchiveLimits>;
}

const CASES: Case[] = [
  {
    name: "path traversal",
    bytes: () =>
      rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries(), { name: "cec/../../evil.txt", data: "x" }]),
    code: "BUNDLE_REJECTED",
    says: ["cec/../../evil.txt", "path traversal"],
  },
  {
    name: "absolute path",
    bytes: () => rawTarGz([manifestEntry(GOOD_FILES), { name: "/tmp/comfydock-evil.txt", data: "x" }]),
    code: "BUNDLE_REJECTED",
    says: ["/tmp/comfydock-evil.txt", "absolute path"],
  },
  {
    name: "symlink",
    bytes: () =>
      rawTarGz([manifestEntry(GOOD_FILES), { name: "cec/link", type: "2", linkname: "/etc/passwd" }]),
    code: "BUNDLE_REJECTED",
    says: ["cec/link", "symbolic link"],
  },
  {
    name: "hard link",
    bytes: () =>
      rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries(), {
        name: "cec/hard",
        type: "1",
        linkname: "cec/uv.lock",
      }]),
    code: "BUNDLE_REJECTED",
    says: ["cec/hard", "hard link"],
  },
  {
    // A .git folder would make git take its config as the repository's own (core.fsmonitor runs).
    name: ".git folder",
    bytes: () =>
      rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries(), {
        name: "dev_nodes/x/.git/config",
        data: '[core]\n\tfsmonitor = "touch /tmp/x #"\n',
      }]),
    code: "BUNDLE_REJECTED",
    says: ["dev_nodes/x/.git/config", "'.git' folder"],
  },
  {
    name: "character device",
    bytes: () => rawTarGz([manifestEntry(GOOD_FILES), { name: "cec/null", type: "3" }]),
    code: "BUNDLE_REJECTED",
    says: ["cec/null", "character device"],
  },
  {
    name: "fifo",
    bytes: () => rawTarGz([manifestEntry(GOOD_FILES), { name: "cec/pipe", type: "6" }]),
    code: "BUNDLE_REJECTED",
    says: ["cec/pipe", "fifo"],
  },
  {
    // The header claims 300 MiB: rejected on the header alone, under the default limits.
    name: "oversize file (default limit)",
    bytes: () =>
      rawTarGz([manifestEntry(GOOD_FILES), { name: "cec/huge.json", size: 300 * 1024 * 1024 }], {
        end: false,
      }),
    code: "BUNDLE_REJECTED",
    says: ["cec/huge.json", "268435456-byte limit"],
  },
  {
    // Sizes of 8 GiB and more only fit a pax record: the reader must honour it, not the header's 0.
    name: "oversize file declared in a pax header (9 GiB)",
    bytes: () =>
      rawTarGz([
        manifestEntry(GOOD_FILES),
        { name: "PaxHeader", type: "x", data: "19 size=9663676416\n" },
        { name: "cec/big.json", size: 0 },
      ], { end: false }),
    code: "BUNDLE_REJECTED",
    says: ["cec/big.json", "is 9663676416 bytes"],
  },
  {
    name: "oversize file (configured limit)",
    bytes: withBig,
    limits: { maxFileBytes: 2000 },
    code: "BUNDLE_REJECTED",
    says: ["cec/workflows/big.json", "is 5000 bytes, over the 2000-byte limit"],
  },
  {
    name: "total expansion past the limit",
    bytes: withBig,
    limits: { maxTotalBytes: 3000 },
    code: "BUNDLE_REJECTED",
    says: ["cec/workflows/big.json", "unpacked size past the 3000-byte limit"],
  },
  {
    // 80 MiB of zeros listed honestly in the manifest: only the expansion ratio (~1000x) catches it.
    name: "zip-bomb-like expansion (default limits)",
    bytes: () => {
      const zeros = new Uint8Array(80 * 1024 * 1024);
      const files = [...GOOD_FILES, { path: "cec/workflows/bomb.json", data: zeros }];
      return rawTarGz([manifestEntry(files), ...goodEntries(), {
        name: "cec/workflows/bomb.json",
        data: zeros,
      }]);
    },
    code: "BUNDLE_REJECTED",
    says: ["cec/workflows/bomb.json", "zip-bomb"],
  },
  {
    name: "too many entries",
    bytes: () =>
      rawTarGz([
        manifestEntry(GOOD_FILES),
        ...goodEntries(),
        ...Array.from({ length: 10 }, (_, i) => ({ name: `cec/d${i}/`, type: "5" })),
      ]),
    limits: { maxEntries: 8 },
    code: "BUNDLE_REJECTED",
    says: ["more than 8 entries"],
  },
  {
    name: "manifest not first",
    bytes: () => rawTarGz([...goodEntries(), manifestEntry(GOOD_FILES)]),
    code: "BUNDLE_NO_MANIFEST",
    says: ["first entry is 'cec/pyproject.toml'"],
  },
  {
    name: "manifest is not JSON",
    bytes: () => rawTarGz([{ name: "comfydock-bundle.json", data: "{not json" }, ...goodEntries()]),
    code: "BUNDLE_MANIFEST_INVALID",
    says: ["not valid JSON"],
  },
  {
    name: "manifest misses fields",
    bytes: () => rawTarGz([{ name: "comfydock-bundle.json", data: '{"format_version":1,"files":[]}' }]),
    code: "BUNDLE_MANIFEST_INVALID",
    says: ["tool", "source_environment"],
  },
  {
    name: "manifest lists a traversal path",
    bytes: () => rawTarGz([manifestEntry([...GOOD_FILES, { path: "../x", data: "x" }])]),
    code: "BUNDLE_MANIFEST_INVALID",
    says: ["files.3.path", "path traversal"],
  },
  {
    name: "newer format_version",
    bytes: () =>
      rawTarGz([
        manifestEntry(GOOD_FILES, { format_version: 2, tool: { name: "comfydock", version: "9.0.0" } }),
        ...goodEntries(),
      ]),
    code: "BUNDLE_TOO_NEW",
    says: ["format_version 2", "newer", "comfydock 9.0.0"],
  },
  {
    name: "hash mismatch",
    bytes: () =>
      rawTarGz([
        manifestEntry(GOOD_FILES),
        { name: "cec/pyproject.toml", data: PYPROJECT },
        { name: "cec/uv.lock", data: "version = 2\n" },
        { name: "cec/workflows/a.json", data: '{"nodes":[]}' },
      ]),
    code: "BUNDLE_REJECTED",
    says: ["cec/uv.lock", "hash mismatch"],
  },
  {
    name: "size differs from the manifest",
    bytes: () =>
      rawTarGz([
        manifestEntry(GOOD_FILES),
        { name: "cec/pyproject.toml", data: PYPROJECT + "\n" },
        ...goodEntries().slice(1),
      ]),
    code: "BUNDLE_REJECTED",
    says: ["cec/pyproject.toml", "the manifest says"],
  },
  {
    name: "missing file",
    bytes: () => rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries().slice(0, 2)]),
    code: "BUNDLE_REJECTED",
    says: ["cec/workflows/a.json", "missing from the archive"],
  },
  {
    name: "extra file",
    bytes: () =>
      rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries(), { name: "cec/extra.py", data: "import os" }]),
    code: "BUNDLE_REJECTED",
    says: ["cec/extra.py", "not listed in the manifest"],
  },
  {
    name: "duplicate entry",
    bytes: () => rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries(), goodEntries()[1]]),
    code: "BUNDLE_REJECTED",
    says: ["cec/uv.lock", "appears twice"],
  },
  {
    name: "truncated gzip",
    bytes: () => {
      const full = rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries()]);
      return full.subarray(0, Math.floor(full.length / 2));
    },
    code: "BUNDLE_CORRUPT",
    says: ["truncated"],
  },
  {
    name: "tar without end marker",
    bytes: () => rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries()], { end: false }),
    code: "BUNDLE_CORRUPT",
    says: ["truncated"],
  },
  {
    name: "not gzip at all",
    bytes: () => new TextEncoder().encode("PK\x03\x04 this is a zip, not a bundle"),
    code: "BUNDLE_CORRUPT",
    says: ["not a valid gzip stream"],
  },
  {
    name: "gzip of something that is not tar",
    bytes: () => gzipSync(new TextEncoder().encode("x".repeat(2000))),
    code: "BUNDLE_CORRUPT",
    says: ["checksum"],
  },
  {
    // A token in a bundle's .cec is its author's: never kept, never sent (the error does not show it either).
    name: "a model URL with its author's token",
    bytes: () => {
      const data = cecPyproject("tokened", {
        extra: `\n[tool.comfydock.models.m]\nsha256 = "${"b".repeat(64)}"\ncategory = "checkpoints"\n` +
          `filename = "m.safetensors"\nsources = [{ type = "url", url = "https://h/m?token=AUTHORsecret99" }]\n`,
      });
      const files = [{ path: "cec/pyproject.toml", data }];
      return rawTarGz([manifestEntry(files), { name: files[0].path, data }]);
    },
    code: "PYPROJECT_INVALID",
    says: [
      "cec/pyproject.toml",
      "tool.comfydock.models.m.sources.0.url: carries credentials (its 'token' parameter)",
    ],
  },
  {
    name: "invalid pyproject.toml inside",
    bytes: () => {
      const files = [{ path: "cec/pyproject.toml", data: '[project]\nname = "x"\n' }];
      return rawTarGz([manifestEntry(files), { name: files[0].path, data: files[0].data }]);
    },
    code: "PYPROJECT_INVALID",
    says: ["cec/pyproject.toml", "tool"],
  },
];

function assertRejection(e: unknown, c: Case): void {
  assert.ok(e instanceof CdError, `${c.name}: expected a CdError, got ${e}`);
  assert.ok(!e.message.includes("AUTHORsecret99"), `${c.name}: a credential in the message: ${e.message}`);
  assert.equal(e.code, c.code, `${c.name}: ${e.message}`);
  for (const s of c.says) {
    if (typeof s === "string") assert.ok(e.message.includes(s), `${c.name}: '${s}' not in: ${e.message}`);
    else assert.match(e.message, s);
  }
  assert.ok(e.hint, `${c.name}: no hint`);
}

Deno.test("hostile bundles: a valid reference bundle passes (the builders make real bundles)", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "ok.tar.gz");
    await Deno.writeFile(file, rawTarGz([manifestEntry(GOOD_FILES), ...goodEntries()]));
    const info = await new BundleManager().extractBundle(file, join(dir, "staging"));
    assert.deepEqual(info.files.map((f) => f.path), GOOD_FILES.map((f) => f.path));
    assert.equal(await Deno.readTextFile(join(dir, "staging", "cec", "pyproject.toml")), PYPROJECT);
  });
});

Deno.test("hostile bundles: extractBundle rejects each with a clear error and leaves no staging dir", async (t) => {
  await withTempDir(async (dir) => {
    const bm = new BundleManager();
    for (const c of CASES) {
      await t.step(c.name, async () => {
        const file = join(dir, "bundle.tar.gz");
        await Deno.writeFile(file, c.bytes());
        const staging = join(dir, "staging");
        await assert.rejects(bm.extractBundle(file, staging, { limits: c.limits }), (e) => {
          assertRejection(e, c);
          return true;
        });
        assert.equal(await exists(staging), false, "staging dir left behind");
        assert.deepEqual([...(await readTree(dir)).keys()], ["bundle.tar.gz"], "something was written");
        const v = await bm.validateBundle(file, { limits: c.limits });
        assert.equal(v.valid, false);
        if (!v.valid) assert.equal(v.error.code, c.code);
      });
    }
    assert.equal(await exists("/tmp/comfydock-evil.txt"), false);
  });
});

Deno.test("hostile bundles: import leaves the workspace exactly as it was", async () => {
  await withTempDir(async (dir) => {
    const ws = workspacePaths(join(dir, "ws"));
    await Deno.mkdir(ws.environments, { recursive: true });
    await Deno.mkdir(ws.metadata, { recursive: true });
    await Deno.writeTextFile(ws.workspaceJson, '{"version":1,"active_environment":null}');
    const before = await readTree(ws.root);
    // A few representative cases through the whole import path (extraction is shared with the suite above).
    for (const c of CASES.filter((c) => !c.name.includes("zip-bomb"))) {
      const file = join(dir, "bundle.tar.gz");
      await Deno.writeFile(file, c.bytes());
      await assert.rejects(
        importEnvironment(testApp(ws, { providers: [] }), file, { limits: c.limits }),
        (e) => {
          assertRejection(e, c);
          return true;
        },
      );
      assert.deepEqual(await readTree(ws.root), before, `${c.name}: the workspace changed`);
    }
  });
});

Deno.test("hostile bundles: rawTar really writes the entry types the reader refuses", () => {
  // Guards the suite itself: if the builder silently wrote regular files, the cases above would prove nothing.
  const tar = rawTar([{ name: "l", type: "2", linkname: "/etc/passwd" }]);
  assert.equal(String.fromCharCode(tar[156]), "2");
  assert.equal(new TextDecoder().decode(tar.subarray(157, 168)), "/etc/passwd");
});
