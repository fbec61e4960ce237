/**
 * `pip freeze` lines (what a ComfyUI-Manager snapshot's `pips` holds, and what a venv's dist-info says) as
 * requirements for `[dependency-groups]`. Pure.
 *
 * The Manager stores each line as a key/value pair: `"name==1.0": ""`, `"name": "https://.../x.whl"` (a
 * `name @ URL` line split at ` @ `), `"-e git+https://...#egg=name": ""`. Decisions:
 * - `name==version` -> that exact pin;
 * - `name @ https://...` / `git+...` -> the same direct reference (uv locks URLs in dependency groups);
 * - `name @ file://...` and `-e /path` -> not mapped: a path on the machine that made the snapshot means
 *   nothing on another one;
 * - `-e git+URL@REF#egg=name` -> `name @ git+URL@REF` (the same code, not editable);
 * - comments and anything else -> not mapped, with the reason.
 */
import { normalizeName } from "./lockfile.ts";

export type FreezeEntry =
  | { kind: "pin"; name: string; version: string; requirement: string }
  | { kind: "url"; name: string; url: string; requirement: string }
  | { kind: "unmapped"; line: string; reason: string };

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** One `pips` entry of a Manager snapshot (key and value as the Manager stores them). */
export function parseFreezeEntry(key: string, value = ""): FreezeEntry {
  const line = value ? `${key} @ ${value}` : key.trim();
  if (line.startsWith("#")) return { kind: "unmapped", line, reason: "a pip freeze comment" };
  if (line.startsWith("-e ") || line.startsWith("--editable")) {
    const target = line.replace(/^(-e|--editable)[\s=]+/, "").trim();
    const m = /^(git\+[a-z]+:\/\/[^#\s]+)#(?:.*&)?egg=([A-Za-z0-9._-]+)/.exec(target);
    if (m && NAME.test(m[2])) return url(m[2], m[1]);
    return { kind: "unmapped", line, reason: "an editable install from a local path (not on this machine)" };
  }
  const at = / @ /.exec(line);
  if (at) {
    const name = line.slice(0, at.index).trim().replace(/\[.*\]$/, "");
    const ref = line.slice(at.index + 3).trim();
    if (!NAME.test(name)) return { kind: "unmapped", line, reason: "not a pip freeze line" };
    if (/^file:/i.test(ref)) {
      return { kind: "unmapped", line, reason: "installed from a local file (a path on another machine)" };
    }
    if (!/^(https?|git\+[a-z]+):\/\//i.test(ref)) {
      return { kind: "unmapped", line, reason: "a direct reference that is neither http(s) nor git" };
    }
    return url(name, ref);
  }
  const pin = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*([^\s;]+)$/.exec(line);
  if (pin && NAME.test(pin[1])) {
    const name = normalizeName(pin[1]);
    return { kind: "pin", name, version: pin[2], requirement: `${name}==${pin[2]}` };
  }
  return { kind: "unmapped", line, reason: "not a pip freeze line (name==version or name @ URL)" };
}

function url(rawName: string, ref: string): FreezeEntry {
  const name = normalizeName(rawName);
  return { kind: "url", name, url: ref, requirement: `${name} @ ${ref}` };
}
