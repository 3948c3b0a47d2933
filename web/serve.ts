/**
 * `deno task web`: bundles the page's script and serves the page, with the headers that make it
 * cross-origin isolated (COOP `same-origin`, COEP `require-corp`), which WASM threads need.
 *
 *     deno task web                # http://localhost:8000
 *     deno task web --port 9000
 *
 * The script is bundled with `deno bundle` (TypeScript in, one ES module and lazily loaded chunks
 * out): a browser cannot import `.ts`, and splitting at `Program.compile`'s dynamic imports keeps
 * the Deno-only backends in chunks the page never loads. onnxruntime-web is left out of the bundle
 * and served as shipped (the page's import map points at it), so it finds its `.wasm` and worker
 * files beside itself. The embedded model, sample data and configs are served from the repository.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
// The page's onnxruntime-web, installed by this command (and the page's tests), not by every
// `deno task train`: runtime/web.ts loads it by a name the browser's import map resolves.
// deno-lint-ignore no-import-prefix
import "npm:onnxruntime-web@1.30.0";

const ROOT = new URL("..", import.meta.url).pathname;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".jsonl": "application/jsonl",
  ".safetensors": "application/octet-stream",
  ".png": "image/png",
  ".yaml": "text/yaml; charset=utf-8",
};

/**
 * Bundles `web/main.ts` into `outDir` (`main.js` plus chunks).
 *
 * @param outDir The output folder.
 */
export async function bundlePage(outDir: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--code-splitting",
      "--external",
      "onnxruntime-web",
      // Only the Deno backends' chunks import it; never loaded by the page.
      "--external",
      "onnxruntime-node",
      "--outdir",
      outDir,
      join(ROOT, "web", "main.ts"),
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`deno bundle web/main.ts failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/** Where URL prefixes are served from. */
function mounts(app: string): [string, string][] {
  const ort = dirname(fileURLToPath(import.meta.resolve("npm:onnxruntime-web@1.30.0")));
  return [
    ["/app/", app],
    ["/ort/", ort],
    ["/model/tiny/", join(ROOT, "model", "tiny")],
    ["/data/samples/", join(ROOT, "data", "samples")],
    ["/configs/", join(ROOT, "configs")],
  ];
}

/**
 * Bundles the page and serves it until `signal` aborts.
 *
 * @param options `port` (0: any free one), `signal` to stop, `quiet` to print nothing.
 * @returns The page's URL and a promise that settles when the server has stopped.
 */
export async function serveWeb(
  options: { port?: number; signal?: AbortSignal; quiet?: boolean } = {},
): Promise<{ url: string; finished: Promise<void> }> {
  const app = await Deno.makeTempDir({ prefix: "da-web-" });
  await bundlePage(app);
  const routes = mounts(app);
  const headers = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
  };
  const handler = async (request: Request): Promise<Response> => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    let file = path === "/" ? join(ROOT, "web", "index.html") : null;
    for (const [prefix, dir] of routes) {
      if (file || !path.startsWith(prefix)) continue;
      const inside = normalize(join(dir, path.slice(prefix.length)));
      if (inside.startsWith(dir + "/")) file = inside;
    }
    if (!file) return new Response("Not found", { status: 404, headers });
    try {
      const body = await Deno.readFile(file);
      const type = TYPES[extname(file)] ?? "application/octet-stream";
      return new Response(body, { headers: { ...headers, "Content-Type": type } });
    } catch {
      return new Response("Not found", { status: 404, headers });
    }
  };
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve({
    port: options.port ?? 8000,
    hostname: "127.0.0.1",
    signal: options.signal,
    onListen: ({ port }) => resolve(port),
  }, handler);
  const port = await listening;
  const finished = server.finished.then(() => Deno.remove(app, { recursive: true }));
  const url = `http://127.0.0.1:${port}/`;
  if (!options.quiet) console.log(`Serving the page at ${url} (cross-origin isolated)`);
  return { url, finished };
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { port: { type: "string" } } });
  const port = Number(values.port ?? 8000);
  if (!Number.isInteger(port) || port < 0) {
    console.error(`Invalid --port ${values.port}: expected a port number`);
    Deno.exit(1);
  }
  await serveWeb({ port });
}
