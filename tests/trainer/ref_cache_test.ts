/** The reference log-prob cache trusts only files that check out (issue #12, case 8). */
import assert from "node:assert/strict";
import { cacheDir, contentChecksum, RefLogpCache } from "../../trainer/ref_cache.ts";

Deno.env.set("DA_CACHE_DIR", await Deno.makeTempDir({ prefix: "da-cache-" }));

/** Opens the cache for `key`, returning it and the warnings printed. */
async function open(key: unknown, source: string) {
  const warnings: string[] = [];
  const error = console.error;
  console.error = (line: string) => warnings.push(line);
  try {
    return { cache: await RefLogpCache.open(key, source), warnings };
  } finally {
    console.error = error;
  }
}

async function saved(key: string) {
  const { cache } = await open(key, "data-v1");
  cache.set("train:0", [-10.5, -12.25]);
  cache.set("train:1", [-3, -4]);
  await cache.save();
  return { path: cache.path!, file: JSON.parse(await Deno.readTextFile(cache.path!)) };
}

Deno.test("RefLogpCache round-trips values with their count, groups and checksums", async () => {
  const { path, file } = await saved("roundtrip");
  assert.ok(path.startsWith(cacheDir()));
  assert.equal(file.count, 2);
  assert.equal(file.groups, 2);
  const { cache, warnings } = await open("roundtrip", "data-v1");
  assert.deepEqual(cache.get("train:0"), [-10.5, -12.25]);
  assert.equal(cache.size, 2);
  assert.deepEqual(warnings, []);
});

Deno.test("RefLogpCache refuses a file edited by hand, truncated, non-finite or from other data", async () => {
  type File = { values: Record<string, unknown[]>; source?: string; format?: string };
  const cases: [string, (file: File) => void, RegExp][] = [
    ["edited", (f) => f.values["train:0"][0] = -1, /its values do not match their checksum/],
    ["dropped", (f) => delete f.values["train:1"], /holds 1 entries but says 2/],
    ["short", (f) => f.values["train:1"] = [-3], /entry train:1 has 1 values, not 2/],
    ["nonfinite", (f) => f.values["train:1"] = [-3, "NaN"], /not a finite number: \[-3,"NaN"\]/],
    ["source", (f) => f.source = "data-v0", /computed from other data or another tokenizer/],
    ["format", (f) => delete f.format, /format is undefined/],
  ];
  for (const [key, edit, why] of cases) {
    const { path, file } = await saved(key);
    edit(file);
    await Deno.writeTextFile(path, JSON.stringify(file));
    const { cache, warnings } = await open(key, "data-v1");
    assert.equal(cache.size, 0, key);
    assert.equal(warnings.length, 1, key);
    assert.match(warnings[0], new RegExp(`^Warning: ignoring reference cache ${path}: `));
    assert.match(warnings[0], why);
    assert.match(warnings[0], /recomputing it$/);
  }
  const { path } = await saved("garbage");
  await Deno.writeTextFile(path, "{ half a file");
  const { cache, warnings } = await open("garbage", "data-v1");
  assert.equal(cache.size, 0);
  assert.match(warnings[0], /ignoring unreadable reference cache .*: .*; recomputing it/);
});

Deno.test("contentChecksum() changes with a data file's contents and a tokenizer file, not its other files", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/data.jsonl`, '{"a": 1}\n');
  await Deno.mkdir(`${dir}/model`);
  await Deno.writeTextFile(`${dir}/model/tokenizer.json`, "{}");
  await Deno.writeTextFile(`${dir}/model/notes.txt`, "x");
  const only = /^tokenizer/;
  const sum = () => contentChecksum([`${dir}/data.jsonl`, `${dir}/model`], only);
  const first = await sum();
  await Deno.writeTextFile(`${dir}/model/notes.txt`, "y");
  assert.equal(await sum(), first);
  await Deno.writeTextFile(`${dir}/model/tokenizer.json`, "{ }");
  const second = await sum();
  assert.notEqual(second, first);
  await Deno.writeTextFile(`${dir}/data.jsonl`, '{"a": 2}\n');
  assert.notEqual(await sum(), second);
  await Deno.remove(dir, { recursive: true });
});
