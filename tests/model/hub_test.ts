import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
// Test-only: named here, not in deno.json, so `deno task train` does not install it.
// deno-lint-ignore no-import-prefix
import { parquetWriteBuffer } from "npm:hyparquet-writer@0.17.0";
import { hubDownload, hubSnapshot, isHubId, repoCacheDir } from "../../model/hub.ts";
import { readRows } from "../../data/sources.ts";

/** An in-memory Hub: repo key ("datasets/org/name" or "org/name") → revision → commit → files. */
interface FakeRepo {
  refs: Record<string, string>;
  commits: Record<string, Record<string, Uint8Array<ArrayBuffer>>>;
}

function fakeHub(repos: Record<string, FakeRepo>) {
  const requests: { url: string; auth: string | null }[] = [];
  const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    requests.push({ url: url.href, auth: new Headers(init?.headers).get("authorization") });
    const path = decodeURIComponent(url.pathname);
    const api = path.match(/^\/api\/(models|datasets)\/(.+?)\/revision\/(.+)$/);
    if (api) {
      const repo = repos[api[1] === "datasets" ? `datasets/${api[2]}` : api[2]];
      const sha = repo?.refs[api[3]] ?? (repo?.commits[api[3]] ? api[3] : undefined);
      if (!repo || !sha) return Promise.resolve(new Response("not found", { status: 404 }));
      const siblings = Object.keys(repo.commits[sha]).map((rfilename) => ({ rfilename }));
      return Promise.resolve(Response.json({ sha, siblings }));
    }
    const resolve = path.match(/^\/(.+?)\/resolve\/([0-9a-f]{40})\/(.+)$/);
    const file = resolve && repos[resolve[1]]?.commits[resolve[2]]?.[resolve[3]];
    return Promise.resolve(
      file ? new Response(file.slice()) : new Response("not found", { status: 404 }),
    );
  };
  return { fetch, requests };
}

const sha = (c: string) => c.repeat(40);
const text = (s: string) => new TextEncoder().encode(s);
const parquet = (prompts: string[]) =>
  new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: "prompt", data: prompts, type: "STRING" },
      { name: "chosen", data: prompts.map((p) => `${p} yes`), type: "STRING" },
      { name: "rejected", data: prompts.map((p) => `${p} no`), type: "STRING" },
    ],
  }));
const gzip = async (s: string) =>
  new Uint8Array(
    await new Response(new Blob([s]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );

Deno.test("hubDownload() stores files in the HF cache layout and reuses them offline", async () => {
  const cacheDir = await Deno.makeTempDir();
  const hub = fakeHub({
    "org/m": { refs: { main: sha("a") }, commits: { [sha("a")]: { "config.json": text("{}") } } },
  });
  const path = await hubDownload("org/m", "config.json", {
    cacheDir,
    fetch: hub.fetch,
    token: "secret",
  });
  equal(path, `${cacheDir}/models--org--m/snapshots/${sha("a")}/config.json`);
  equal(await Deno.readTextFile(path), "{}");
  equal(await Deno.readTextFile(`${cacheDir}/models--org--m/refs/main`), sha("a"));
  ok(hub.requests.every((r) => r.auth === "Bearer secret"));
  const before = hub.requests.length;
  equal(
    await hubDownload("org/m", "config.json", { cacheDir, offline: true, fetch: hub.fetch }),
    path,
  );
  equal(hub.requests.length, before, "offline must not fetch");
  // Unreachable Hub: the cached snapshot is used.
  const down = () => Promise.reject(new TypeError("fetch failed"));
  equal(await hubDownload("org/m", "config.json", { cacheDir, fetch: down }), path);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("hubDownload() sends HF_TOKEN from the environment", async () => {
  const cacheDir = await Deno.makeTempDir();
  const hub = fakeHub({
    "org/m": { refs: { main: sha("b") }, commits: { [sha("b")]: { "a.txt": text("x") } } },
  });
  const old = Deno.env.get("HF_TOKEN");
  Deno.env.set("HF_TOKEN", "from-env");
  try {
    await hubDownload("org/m", "a.txt", { cacheDir, fetch: hub.fetch });
  } finally {
    if (old === undefined) Deno.env.delete("HF_TOKEN");
    else Deno.env.set("HF_TOKEN", old);
  }
  deepStrictEqual(hub.requests.map((r) => r.auth), ["Bearer from-env", "Bearer from-env"]);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("hubSnapshot() names the id and cache path when offline and not cached", async () => {
  const cacheDir = await Deno.makeTempDir();
  const down = () => Promise.reject(new TypeError("fetch failed"));
  for (const options of [{ fetch: down }, { offline: true }]) {
    await rejects(
      () => hubSnapshot("org/absent", { ...options, cacheDir, repoType: "dataset" }),
      (e: Error) => {
        match(e.message, /^Dataset "org\/absent" \(revision main\) is not in the cache/);
        ok(
          e.message.includes(repoCacheDir("org/absent", { cacheDir, repoType: "dataset" })),
          e.message,
        );
        return true;
      },
    );
  }
  const hub = fakeHub({});
  await rejects(() => hubSnapshot("org/absent", { cacheDir, fetch: hub.fetch }), /HTTP 404/);
  const denied = () => Promise.resolve(new Response("", { status: 401 }));
  await rejects(() => hubSnapshot("org/gated", { cacheDir, fetch: denied }), /HTTP 401.*HF_TOKEN/);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("isHubId() tells ids from paths", () => {
  for (const id of ["org/name", "Anthropic/hh-rlhf", "gpt2", "a.b/c_d-e"]) {
    equal(isHubId(id), true, id);
  }
  for (const p of ["./x", "data/x.jsonl", "a/b/c", "/abs/path", "x.parquet"]) {
    equal(isHubId(p), false, p);
  }
});

Deno.test("readRows() downloads the parquet files of a Hub dataset split", async () => {
  const cacheDir = await Deno.makeTempDir();
  const hub = fakeHub({
    "datasets/org/prefs": {
      refs: { main: sha("c") },
      commits: {
        [sha("c")]: {
          "README.md": text("# prefs"),
          "data/train-00000-of-00002.parquet": parquet(["t1", "t2"]),
          "data/train-00001-of-00002.parquet": parquet(["t3"]),
          "data/test-00000-of-00001.parquet": parquet(["e1"]),
        },
      },
    },
  });
  const train = await readRows("org/prefs", { cacheDir, fetch: hub.fetch });
  deepStrictEqual(train.rows.map((r) => r.prompt), ["t1", "t2", "t3"]);
  ok(
    train.files.every((f) =>
      f.startsWith(`${cacheDir}/datasets--org--prefs/snapshots/${sha("c")}/data/`)
    ),
  );
  const test = await readRows("org/prefs", { split: "test", cacheDir, fetch: hub.fetch });
  deepStrictEqual(test.rows.map((r) => r.prompt), ["e1"]);
  const offline = await readRows("org/prefs", { split: "test", cacheDir, offline: true });
  deepStrictEqual(offline.rows, test.rows);
  await rejects(
    () => readRows("org/prefs", { split: "validation", cacheDir, fetch: hub.fetch }),
    /No files for split "validation"/,
  );
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("readRows() falls back to the Hub's parquet conversion, and to JSONL for a config folder", async () => {
  const cacheDir = await Deno.makeTempDir();
  const row = (p: string) =>
    JSON.stringify({
      chosen: `\n\nHuman: ${p}\n\nAssistant: y`,
      rejected: `\n\nHuman: ${p}\n\nAssistant: n`,
    });
  const hub = fakeHub({
    "datasets/org/hh": {
      refs: { main: sha("d"), "refs/convert/parquet": sha("e") },
      commits: {
        [sha("d")]: {
          "harmless-base/train.jsonl.gz": await gzip(row("harmless")),
          "helpful-base/train.jsonl.gz": await gzip(row("helpful")),
        },
        [sha("e")]: { "default/train/0000.parquet": parquet(["converted"]) },
      },
    },
  });
  const converted = await readRows("org/hh", { cacheDir, fetch: hub.fetch });
  deepStrictEqual(converted.rows.map((r) => r.prompt), ["converted"]);
  equal(
    await Deno.readTextFile(`${cacheDir}/datasets--org--hh/refs/refs/convert/parquet`),
    sha("e"),
  );
  const harmless = await readRows("org/hh", {
    config: "harmless-base",
    cacheDir,
    fetch: hub.fetch,
  });
  deepStrictEqual(harmless.rows.map((r) => (r.chosen as string).split("\n")[2]), [
    "Human: harmless",
  ]);
  await Deno.remove(cacheDir, { recursive: true });
});
