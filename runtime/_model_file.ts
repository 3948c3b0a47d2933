/**
 * Opening a model whose weights are external data: onnxruntime resolves external data relative to
 * the model file, so the model and its data are written to a temporary folder first. Kept apart
 * from `program.ts` because it needs a file system, which the browser build has not.
 *
 * @module
 */
import { join } from "node:path";
import type { OnnxModel } from "../graph/onnx.ts";

/**
 * Writes a model whose weights are external data to a temporary folder (onnxruntime resolves
 * external data relative to the model file), opens it, and removes the folder. Files that
 * file-backed constants point into (`linkedFiles`) are hard-linked there — onnxruntime refuses
 * symbolic links out of the model's folder; a hard link shares the file's pages and disk — or
 * copied across file systems.
 *
 * @param onnx The model, with `externalData` or `linkedFiles`.
 * @param open Opens the model file at the given path.
 * @returns What `open` returned.
 */
export async function withModelFile<T>(
  onnx: OnnxModel,
  open: (path: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "onnx-" });
  try {
    await Deno.writeFile(join(dir, "model.onnx"), onnx.model);
    if (onnx.externalData) {
      const file = await Deno.open(join(dir, onnx.externalData.file), {
        write: true,
        create: true,
      });
      try {
        for (const chunk of onnx.externalData.chunks) {
          for (let written = 0; written < chunk.length;) {
            written += await file.write(chunk.subarray(written));
          }
        }
      } finally {
        file.close();
      }
    }
    for (const { name, path } of onnx.linkedFiles ?? []) {
      await Deno.link(path, join(dir, name)).catch(() => Deno.copyFile(path, join(dir, name)));
    }
    return await open(join(dir, "model.onnx"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
