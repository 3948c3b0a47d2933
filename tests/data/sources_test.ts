import { deepStrictEqual, equal, rejects } from "node:assert/strict";
// Test-only: named here, not in deno.json, so `deno task train` does not install it.
// deno-lint-ignore no-import-prefix
import { parquetWriteBuffer } from "npm:hyparquet-writer@0.17.0";
import { readRows } from "../../data/sources.ts";

const rows = [
  {
    prompt: "Q1",
    chosen: [{ role: "user", content: "Q1" }, { role: "assistant", content: "A" }],
    rejected: [{ role: "user", content: "Q1" }, { role: "assistant", content: "B" }],
    score_chosen: 4.5,
  },
  {
    prompt: "Q2",
    chosen: [{ role: "user", content: "Q2" }, { role: "assistant", content: "C" }],
    rejected: [{ role: "user", content: "Q2" }, { role: "assistant", content: "D" }],
    score_chosen: 2,
  },
];

async function temp(name: string, data: string | Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/${name}`;
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  return path;
}

Deno.test("readRows() reads JSONL, skipping blank lines", async () => {
  const path = await temp("d.jsonl", rows.map((r) => JSON.stringify(r)).join("\n\n") + "\n");
  const source = await readRows(path);
  deepStrictEqual(source.rows, rows);
  deepStrictEqual(source.columns, ["prompt", "chosen", "rejected", "score_chosen"]);
  deepStrictEqual(source.files, [path]);
  equal((await readRows(path, { limit: 1 })).rows.length, 1);
});

Deno.test("readRows() reads a JSON array, a wrapped array and gzipped JSONL", async () => {
  deepStrictEqual((await readRows(await temp("d.json", JSON.stringify(rows)))).rows, rows);
  deepStrictEqual(
    (await readRows(await temp("w.json", JSON.stringify({ train: rows })))).rows,
    rows,
  );
  const gz = new Uint8Array(
    await new Response(
      new Blob([rows.map((r) => JSON.stringify(r)).join("\n")]).stream().pipeThrough(
        new CompressionStream("gzip"),
      ),
    ).arrayBuffer(),
  );
  deepStrictEqual((await readRows(await temp("d.jsonl.gz", gz))).rows, rows);
});

Deno.test("readRows() reads parquet with nested message lists and int64 ids", async () => {
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "prompt", data: rows.map((r) => r.prompt), type: "STRING" },
      { name: "chosen", data: rows.map((r) => r.chosen) },
      { name: "rejected", data: rows.map((r) => r.rejected) },
      { name: "score_chosen", data: rows.map((r) => r.score_chosen), type: "DOUBLE" },
      { name: "ids", data: [[1n, 2n], [3n]] },
      { name: "n", data: [10n, 11n], type: "INT64" },
    ],
  });
  const path = await temp("d.parquet", new Uint8Array(buffer));
  const source = await readRows(path);
  deepStrictEqual(
    source.rows,
    rows.map((r, i) => ({ ...r, ids: i === 0 ? [1, 2] : [3], n: 10 + i })),
  );
  equal((await readRows(path, { limit: 1 })).rows.length, 1);
});

Deno.test("readRows() reports bad files clearly", async () => {
  await rejects(
    async () => readRows(await temp("bad.jsonl", '{"a": 1}\n{"a": \n')),
    /Invalid JSON on line 2 of .*bad\.jsonl/,
  );
  await rejects(
    async () => readRows(await temp("list.jsonl", "[1, 2]\n")),
    /Line 1 of .*list\.jsonl is not a JSON object/,
  );
  await rejects(
    async () => readRows(await temp("d.json", "[1]")),
    /Expected a JSON array of objects/,
  );
  await rejects(async () => readRows(await temp("d.csv", "a,b")), /Unsupported dataset file type/);
  await rejects(() => readRows("./missing.jsonl"), /Dataset not found: \.\/missing\.jsonl/);
});

Deno.test("readRows() names a corrupt or truncated Parquet file", async () => {
  const good = new Uint8Array(parquetWriteBuffer({
    columnData: [{ name: "prompt", data: ["Q1", "Q2"], type: "STRING" }],
  }));
  const broken = [
    ["footer.parquet", good.slice(0, good.length - 2)], // "footer != PAR1"
    ["metadata.parquet", good.map((b, i) => i > good.length - 40 && i < good.length - 8 ? 7 : b)],
    ["random.parquet", new Uint8Array(64).fill(3)],
  ] as const;
  for (const [name, bytes] of broken) {
    await rejects(
      async () => readRows(await temp(name, bytes)),
      new RegExp(`Cannot read Parquet file .*${name}: .*\\(corrupt, truncated or not Parquet\\)`),
    );
  }
});

Deno.test("readRows() refuses text that is not UTF-8, naming the file and line or row", async () => {
  // "café" saved as cp1252: é is the single byte 0xe9, not UTF-8's 0xc3 0xa9.
  const cp1252 = (text: string) => Uint8Array.from(text, (c) => c === "é" ? 0xe9 : c.charCodeAt(0));
  const lines = rows.map((r) => JSON.stringify(r));
  lines[1] = lines[1].replace('"Q2"', '"café"');
  const fix =
    "save the file as UTF-8 \\(from cp1252, e\\.g\\. iconv -f cp1252 -t utf-8 IN > OUT\\)";
  const jsonl = await temp("d.jsonl", cp1252(lines.join("\n")));
  await rejects(
    readRows(jsonl),
    new RegExp(`^Error: Invalid UTF-8 on line 2 of ${jsonl}: ${fix}$`),
  );
  const json = await temp("d.json", cp1252(`[\n${lines.join(",\n")}\n]`));
  await rejects(readRows(json), new RegExp(`^Error: Invalid UTF-8 on line 3 of ${json}: ${fix}$`));
  const gz = new Uint8Array(
    await new Response(
      new Blob([cp1252(lines.join("\n"))]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const gzPath = await temp("d.jsonl.gz", gz);
  await rejects(readRows(gzPath), new RegExp(`Invalid UTF-8 on line 2 of ${gzPath}`));

  // Parquet: "cafXX" becomes "caf\xe9X" in the uncompressed column (the length stays), in a
  // string column and in a JSON one.
  const message = (content: string) => [{ role: "assistant", content }];
  for (
    const [column, data] of [["prompt", ["Q1", "cafXX"]], ["chosen", [
      message("A"),
      message("cafXX"),
    ]]] as const
  ) {
    const parquet = new Uint8Array(parquetWriteBuffer({
      codec: "UNCOMPRESSED",
      columnData: [{
        name: column,
        data: [...data],
        type: column === "prompt" ? "STRING" : "JSON",
      }],
    }));
    const marker = new TextEncoder().encode("cafXX");
    for (let i = 0; i + marker.length <= parquet.length; i++) {
      if (marker.every((b, j) => parquet[i + j] === b)) parquet[i + 3] = 0xe9;
    }
    const path = await temp("d.parquet", parquet);
    await rejects(
      readRows(path),
      new RegExp(
        `^Error: Invalid UTF-8 in row 1, column "${column}" of ${path}: write its strings as UTF-8$`,
      ),
    );
  }
});
