/** Human sizes for plans and listings (binary units, as file managers and ComfyUI show them). */
export function formatSize(n: number | undefined | null): string {
  if (n === undefined || n === null) return "size unknown";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}
