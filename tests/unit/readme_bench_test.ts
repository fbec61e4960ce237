/**
 * The README's performance table cannot claim what the bench did not measure: it must be exactly the one
 * bench/readme.ts makes from the committed bench/results.json (`deno task bench --update-readme`).
 */
import assert from "node:assert/strict";
import { performanceRows, readmeBlock, Results, RESULTS_FILE } from "../../bench/readme.ts";

const README = new URL("../../README.md", import.meta.url);

Deno.test("the README's performance table is the one bench/results.json makes", async () => {
  const results = Results.parse(JSON.parse(await Deno.readTextFile(RESULTS_FILE)));
  const block = readmeBlock(await Deno.readTextFile(README));
  assert.ok(block, "README.md has the generated performance block");
  assert.deepEqual(block, performanceRows(results), "run 'deno task bench --update-readme'");
});

Deno.test("the check can fail: a figure edited by hand in the README is caught", async () => {
  const results = Results.parse(JSON.parse(await Deno.readTextFile(RESULTS_FILE)));
  const readme = await Deno.readTextFile(README);
  const [what, figure] = performanceRows(results).rows[2];
  const edited = readme.replace(figure, figure.replace(/\d+ ms/, "1 ms"));
  assert.notEqual(edited, readme, `the row '${what}' is in the README`);
  assert.notDeepEqual(readmeBlock(edited), performanceRows(results));
});
