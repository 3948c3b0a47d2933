import { ok } from "node:assert/strict";
import { bundlePage } from "../../web/serve.ts";

/** The modules a chunk names in its static `import … from "…"` statements. */
function staticImports(code: string): string[] {
  return [...code.matchAll(/^(?:import|export)[^;]*?from\s*"([^"]+)";?$/gms)].map((m) => m[1]);
}

Deno.test("bundlePage() gives the browser no static import of a node: module", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await bundlePage(dir);
    const seen = new Set<string>();
    const problems: string[] = [];
    const visit = async (file: string, path: string[]) => {
      if (seen.has(file)) return;
      seen.add(file);
      const code = await Deno.readTextFile(`${dir}/${file}`);
      for (const spec of staticImports(code)) {
        if (spec.startsWith("./")) await visit(spec.slice(2), [...path, file]);
        else if (spec !== "onnxruntime-web") {
          problems.push(`${spec} (in ${[...path, file].join(" → ")})`);
        }
      }
    };
    await visit("main.js", []);
    ok(seen.size > 1, "the bundle has chunks");
    ok(
      problems.length === 0,
      `The page's bundle statically imports modules a browser cannot load: ${
        problems.join("; ")
      }: move file-system code out of modules the page imports (see web/run.ts's imports)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
