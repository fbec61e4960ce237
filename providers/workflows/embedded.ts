/**
 * Workflows come as JSON files, and as the images ComfyUI saves (how most people share them). ComfyUI's
 * SaveImage writes PNG text chunks `workflow` (UI format) and `prompt` (API format) with PIL's
 * `PngInfo.add_text` (a `tEXt` chunk, or `iTXt` when the text is not Latin-1; other tools write `zTXt`);
 * SaveAnimatedWEBP writes them into the EXIF of the WebP's `EXIF` chunk as ASCII strings
 * `prompt:{...}` (tag 0x0110 Model) and `workflow:{...}` (0x010F Make, then downwards for other keys).
 * The UI workflow is preferred (it holds the pack hints and model URLs), the API prompt is the fallback.
 *
 * Anything else gets an error that names the file and says what was expected, never its bytes.
 */
import { unzlibSync } from "fflate";
import { CdError } from "../../lib/errors.ts";
import { parseWorkflowText } from "./analyze.ts";

export interface WorkflowSource {
  json: unknown;
  /** The workflow's JSON text as stored (a PNG's chunk text, or the file's own text). */
  text: string;
  from: "json" | "png" | "webp";
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: false });

function startsWith(bytes: Uint8Array, sig: number[]): boolean {
  return sig.every((b, i) => bytes[i] === b);
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return latin1.decode(bytes.subarray(from, to));
}

/** PNG text chunks (`tEXt`, `zTXt`, `iTXt`) by keyword. Damaged chunks are skipped. */
function pngTexts(bytes: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = ascii(bytes, pos + 4, pos + 8);
    const start = pos + 8;
    const end = start + len;
    if (end + 4 > bytes.length) break;
    const data = bytes.subarray(start, end);
    const nul = data.indexOf(0);
    if (nul > 0) {
      const key = ascii(data, 0, nul);
      try {
        if (type === "tEXt") out.set(key, latin1.decode(data.subarray(nul + 1)));
        else if (type === "zTXt") out.set(key, latin1.decode(unzlibSync(data.subarray(nul + 2))));
        else if (type === "iTXt") {
          const compressed = data[nul + 1] === 1;
          let p = data.indexOf(0, nul + 3); // end of the language tag
          if (p >= 0) p = data.indexOf(0, p + 1); // end of the translated keyword
          if (p >= 0) {
            const body = data.subarray(p + 1);
            out.set(key, utf8.decode(compressed ? unzlibSync(body) : body));
          }
        }
      } catch {
        // a damaged compressed chunk: as if it were absent
      }
    }
    if (type === "IEND") break;
    pos = end + 4;
  }
  return out;
}

/** The ASCII strings of a TIFF/EXIF block's first IFD (what ComfyUI writes its metadata into). */
function exifStrings(tiff: Uint8Array): string[] {
  let b = tiff;
  if (ascii(b, 0, 6) === "Exif\0\0") b = b.subarray(6);
  if (b.length < 8) return [];
  const little = ascii(b, 0, 2) === "II";
  if (!little && ascii(b, 0, 2) !== "MM") return [];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (o: number) => view.getUint16(o, little);
  const u32 = (o: number) => view.getUint32(o, little);
  const ifd = u32(4);
  if (ifd + 2 > b.length) return [];
  const out: string[] = [];
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > b.length) break;
    const type = u16(e + 2);
    const count = u32(e + 4);
    if (type !== 2 && type !== 7) continue; // ASCII, UNDEFINED
    const at = count <= 4 ? e + 8 : u32(e + 8);
    if (at + count > b.length) continue;
    out.push(utf8.decode(b.subarray(at, at + count)).replace(/\0+$/, ""));
  }
  return out;
}

/** The `EXIF` chunk of a RIFF WebP, or null. */
function webpExif(bytes: Uint8Array): Uint8Array | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 12;
  while (pos + 8 <= bytes.length) {
    const fourcc = ascii(bytes, pos, pos + 4);
    const size = view.getUint32(pos + 4, true);
    const start = pos + 8;
    if (start + size > bytes.length) break;
    if (fourcc === "EXIF") return bytes.subarray(start, start + size);
    pos = start + size + (size % 2);
  }
  return null;
}

/** What a file that is not a workflow looks like, for the error message. */
function describe(bytes: Uint8Array): string {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) {
    return "a JPEG image (ComfyUI does not store workflows in JPEGs)";
  }
  if (startsWith(bytes, [0x47, 0x49, 0x46])) return "a GIF image";
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) return "a zip archive";
  if (startsWith(bytes, [0x1f, 0x8b])) return "a gzip file that is not a workflow bundle";
  const head = bytes.subarray(0, 512);
  const control = head.filter((c) => c < 9 || (c > 13 && c < 32)).length;
  return control > 0 ? "binary data" : "text that is not JSON";
}

const EXPECTED = "a ComfyUI workflow: JSON (UI or API format), or a PNG/WebP image saved by ComfyUI";

function noWorkflowIn(file: string, what: string): CdError {
  return new CdError("WORKFLOW_NOT_IN_IMAGE", `${file}: ${what} without ComfyUI workflow metadata`, {
    hint:
      "ComfyUI embeds the workflow only in images it saved itself (SaveImage, SaveAnimatedWEBP) without " +
      "--disable-metadata; image hosts often strip it: use the original file, or export the workflow as JSON",
  });
}

/** The JSON of a `workflow` / `prompt` value, with the file and where it was found in errors. */
function fromText(text: string, file: string, where: string, from: "png" | "webp"): WorkflowSource {
  return { json: parseWorkflowText(text, `${file} (${where})`), text, from };
}

/**
 * The workflow in a file's bytes: JSON as it is, a PNG's text chunks, a WebP's EXIF. `file` names the source
 * in errors.
 */
export function workflowFromBytes(bytes: Uint8Array, file: string): WorkflowSource {
  if (startsWith(bytes, PNG_SIGNATURE)) {
    const texts = pngTexts(bytes);
    const key = texts.has("workflow") ? "workflow" : texts.has("prompt") ? "prompt" : null;
    if (!key) throw noWorkflowIn(file, "a PNG image");
    return fromText(texts.get(key)!, file, `PNG text chunk '${key}'`, "png");
  }
  if (ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") {
    const exif = webpExif(bytes);
    const strings = exif ? exifStrings(exif) : [];
    for (const key of ["workflow", "prompt"]) {
      const s = strings.find((x) => x.startsWith(`${key}:`));
      if (s) return fromText(s.slice(key.length + 1), file, `WebP EXIF '${key}:'`, "webp");
    }
    throw noWorkflowIn(file, "a WebP image");
  }
  let text = utf8.decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM some editors write
  const first = text.trimStart()[0];
  if (first !== "{" && first !== "[") {
    throw new CdError("WORKFLOW_NOT_JSON", `${file}: expected ${EXPECTED}; found ${describe(bytes)}`, {
      hint: "export the workflow from ComfyUI (Workflow > Export), or give the PNG/WebP ComfyUI saved",
    });
  }
  return { json: parseWorkflowText(text, file), text, from: "json" };
}
