/**
 * Opt-in, needs PyPI (not part of `deno task bench`): the packages path of a real environment, as issue 18
 * found it broken, with timings. `deno task bench:real`.
 *
 * ComfyUI v0.3.64's requirements (a local repository carrying them, unless COMFYDOCK_REAL_COMFYUI_URL names
 * a real ComfyUI), torch from PyPI (`--torch-backend pypi`, ~3 GB with CUDA wheels on Linux x86_64),
 * resolved as of COMFYDOCK_REAL_AS_OF (default 2025-12-15, so the downloads stay the same); then the
 * requirements of four real node packs, then comfyui_controlnet_aux (mediapipe brings opencv-contrib-python
 * beside the packs' opencv-python and opencv-python-headless). Removing it with plain uv deletes `cv2/`:
 * ComfyDock's plan must say so and apply must heal it; removing it through ComfyDock must leave `cv2`
 * importable after one apply. COMFYDOCK_REAL_UV_CACHE reuses a uv cache between runs.
 */
import { join } from "node:path";
import { realCliEnv, timedSteps } from "./real_steps.ts";
import { buildComfyUIRepo } from "../fixtures/comfyui_repo.ts";
import { run } from "../lib/proc.ts";

/** ComfyUI v0.3.64's requirements.txt; the frontend/template pins are left open (the local repository's commit is not that release). */
export const COMFYUI_0_3_64_REQUIREMENTS = [
  "comfyui-frontend-package",
  "comfyui-workflow-templates",
  "comfyui-embedded-docs",
  "torch",
  "torchsde",
  "torchvision",
  "torchaudio",
  "numpy>=1.25.0",
  "einops",
  "transformers>=4.37.2",
  "tokenizers>=0.13.3",
  "sentencepiece",
  "safetensors>=0.4.2",
  "aiohttp>=3.11.8",
  "yarl>=1.18.0",
  "pyyaml",
  "Pillow",
  "scipy",
  "tqdm",
  "psutil",
  "alembic",
  "SQLAlchemy",
  "av>=14.2.0",
  "kornia>=0.7.1",
  "spandrel",
  "soundfile",
  "pydantic~=2.0",
  "pydantic-settings~=2.0",
];

/** requirements.txt of real node packs (ComfyUI-Impact-Pack, KJNodes, VideoHelperSuite, essentials). */
const PACKS: Record<string, string[]> = {
  "comfyui-impact-pack": [
    "segment-anything",
    "scikit-image",
    "piexif",
    "opencv-python-headless",
    "GitPython",
    "scipy>=1.5.4",
    "dill",
    "matplotlib",
  ],
  "comfyui-kjnodes": [
    "pillow>=10.3.0",
    "scipy",
    "color-matcher",
    "matplotlib",
    "huggingface_hub",
    "mss",
    "opencv-python",
  ],
  "comfyui-videohelpersuite": ["opencv-python", "imageio-ffmpeg"],
  "comfyui-essentials": ["numba", "colour-science", "rembg", "pixeloe", "transparent-background"],
};
// svglib 1.6 needs pycairo, which builds only where cairo's headers are installed: the older one does not.
const CONTROLNET_AUX = [
  "torch",
  "importlib_metadata",
  "huggingface_hub",
  "scipy",
  "opencv-python>=4.7.0.72",
  "filelock",
  "numpy",
  "Pillow",
  "einops",
  "torchvision",
  "pyyaml",
  "scikit-image",
  "python-dateutil",
  "mediapipe",
  "svglib<1.6",
  "fvcore",
  "yapf",
  "omegaconf",
  "ftfy",
  "addict",
  "yacs",
  "trimesh[easy]",
  "albumentations",
  "scikit-learn",
  "matplotlib",
];

const groupsToml = (groups: Record<string, string[]>) =>
  "\n[dependency-groups]\n" +
  Object.entries(groups).map(([g, r]) => `${JSON.stringify(g)} = ${JSON.stringify(r)}`).join("\n") + "\n";

async function main(): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "comfydock-real-" });
  const home = join(tmp, "home");
  const env = realCliEnv(home);
  const { step, table } = timedSteps(env);
  const paths = {
    cec: join(home, "environments", "real", ".cec"),
    venv: join(home, "environments", "real", ".venv"),
  };
  const pyproject = join(paths.cec, "pyproject.toml");
  const python = join(paths.venv, "bin", "python");
  const importCv2 = async () =>
    (await run(python, ["-c", "import cv2; print(cv2.__version__)"], { check: false })).code === 0;
  try {
    const url = Deno.env.get("COMFYDOCK_REAL_COMFYUI_URL") ??
      (await buildComfyUIRepo(join(tmp, "ComfyUI"), { requirements: COMFYUI_0_3_64_REQUIREMENTS.join("\n") }))
        .url;
    await step("init", ["init"]);
    const cache = Deno.env.get("COMFYDOCK_REAL_UV_CACHE");
    if (cache) {
      await Deno.remove(join(home, "uv_cache"), { recursive: true });
      await Deno.symlink(cache, join(home, "uv_cache"));
    }
    const asOf = Deno.env.get("COMFYDOCK_REAL_AS_OF") ?? "2025-12-15";
    const created = await step("create (torch from PyPI, resolved as of a date)", [
      "create",
      "real",
      "--comfyui-url",
      url,
      "--torch-backend",
      "pypi",
      "--resolve-as-of",
      asOf,
      "--use",
      "--json",
    ]);
    console.log(`  torch ${JSON.parse(created.stdout).torch}`);
    for (let i = 1; i <= 3; i++) await step(`no-op plan #${i}`, ["plan", "--detailed-exitcode"]);
    await step("status --deep", ["status", "--deep", "--check"]);

    const base = await Deno.readTextFile(pyproject);
    await Deno.writeTextFile(pyproject, base + groupsToml(PACKS));
    await step("apply: four node packs' requirements", ["apply", "--yes"]);
    await step("commit", ["commit", "-m", "node packs"]);
    await Deno.writeTextFile(
      pyproject,
      base + groupsToml({ ...PACKS, comfyui_controlnet_aux: CONTROLNET_AUX }),
    );
    await step("apply: + controlnet_aux (opencv-contrib-python)", ["apply", "--yes"]);
    await step("commit", ["commit", "-m", "controlnet_aux"]);
    for (let i = 1; i <= 3; i++) await step(`no-op plan #${i}`, ["plan", "--detailed-exitcode"]);

    // What uv does on its own: the shared cv2/ goes with opencv-contrib-python.
    await Deno.writeTextFile(pyproject, base + groupsToml(PACKS));
    const uv = env.COMFYDOCK_UV ?? "uv";
    const uvEnv = { UV_CACHE_DIR: join(home, "uv_cache"), UV_PROJECT_ENVIRONMENT: paths.venv };
    await run(uv, ["lock"], { cwd: paths.cec, env: uvEnv });
    await run(uv, ["sync", "--frozen"], { cwd: paths.cec, env: uvEnv });
    console.log(`  import cv2 after plain uv: ${await importCv2() ? "works" : "fails"}`);
    const broken = await step("plan after plain uv removed a sibling", ["plan", "--detailed-exitcode"], [2]);
    console.log(broken.stdout.split("\n").find((l) => l.includes("packages will be updated")));
    await step("apply: reinstall what lost files", ["apply", "--yes"]);
    console.log(`  import cv2 after apply: ${await importCv2() ? "works" : "fails"}`);
    await step("plan after the heal", ["plan", "--detailed-exitcode"]);

    await Deno.writeTextFile(
      pyproject,
      base + groupsToml({ ...PACKS, comfyui_controlnet_aux: CONTROLNET_AUX }),
    );
    await step("apply: controlnet_aux back", ["apply", "--yes"]);
    await Deno.writeTextFile(pyproject, base + groupsToml(PACKS));
    await step("apply: controlnet_aux removed through ComfyDock", ["apply", "--yes"]);
    console.log(`  import cv2 after one apply: ${await importCv2() ? "works" : "fails"}`);
    await step("plan after it", ["plan", "--detailed-exitcode"]);
    table();
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
