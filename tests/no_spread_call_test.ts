/**
 * A lint-like guard: no source file spreads an array into a function call (`Math.max(...ids)`,
 * `rows.push(...more)`). Every argument of a call goes on V8's stack, so a data-sized array
 * (a 151k-entry vocabulary, 61k rows, a long metrics series) throws "Maximum call stack size
 * exceeded". The one allowed form is a graph node's `inputs` (an op's arity, at most a handful).
 * Spreads inside array and object literals are fine: they are loops, not calls.
 */

import { deepStrictEqual } from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const SOURCE_FOLDERS = [
  "algorithms",
  "bench",
  "data",
  "graph",
  "judges",
  "model",
  "tools",
  "trainer",
];
const ROOT_FILES = ["mod.ts", "score.ts", "train.ts"];

/** The call spreads in `source`: the line and spread argument of each `f(...x)` / `f(a, ...x)`. */
export function findCallSpreads(source: string): { line: number; argument: string }[] {
  const code = blankCommentsAndStrings(source);
  const found: { line: number; argument: string }[] = [];
  const brackets: { char: string; isCall: boolean }[] = [];
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (c === "(" || c === "[" || c === "{") {
      const before = code.slice(0, i).trimEnd().at(-1) ?? "";
      brackets.push({ char: c, isCall: c === "(" && /[\w$)\]]/.test(before) });
    } else if (c === ")" || c === "]" || c === "}") brackets.pop();
    else if (code.startsWith("...", i) && brackets.at(-1)?.isCall) {
      const argument = code.slice(i + 3).match(/^[^,()]*/)![0].trim();
      if (isRestParameter(code, i + 3 + argument.length, argument)) continue;
      if (/^[\w$]+\.inputs$/.test(argument)) continue;
      found.push({ line: code.slice(0, i).split("\n").length, argument });
    }
  }
  return found;
}

async function collect(dir: string, into: string[]): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) await collect(`${dir}/${entry.name}`, into);
    else into.push(`${dir}/${entry.name}`);
  }
}

/** `(...xs: T[])` or `(...xs) =>` declare a rest parameter; they spread nothing. */
function isRestParameter(code: string, end: number, argument: string): boolean {
  if (/^[\w$]+\s*:/.test(argument)) return true;
  return /^[\w$]+$/.test(argument) && /^\)\s*(:[^=]*)?=>/.test(code.slice(end));
}

/** Replaces comments and string/template contents with spaces (line breaks kept). */
function blankCommentsAndStrings(source: string): string {
  return source.replace(
    /\/\/[^\n]*|\/\*[\s\S]*?\*\/|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`/g,
    (m) => m.replace(/[^\n]/g, " "),
  );
}

Deno.test("findCallSpreads() finds call spreads and nothing else", () => {
  const source = [
    "const a = Math.max(...ids, 1);",
    "rows.push(...await read(file));",
    "const b = [...ids, ...more];",
    "const c = { ...options };",
    "function f(...shape: number[]) {}",
    "const g = (...xs) => xs;",
    "stack.push(...t.inputs);",
    "// Math.max(...commented)",
    'const s = "push(...quoted)";',
    "f(a, [...b], ...c.map((x) => x));",
  ].join("\n");
  deepStrictEqual(findCallSpreads(source), [
    { line: 1, argument: "ids" },
    { line: 2, argument: "await read" },
    { line: 10, argument: "c.map" },
  ]);
});

Deno.test("source files spread no array into a function call", async () => {
  const files = ROOT_FILES.map((f) => new URL(f, ROOT).pathname);
  for (const folder of SOURCE_FOLDERS) await collect(new URL(folder, ROOT).pathname, files);
  const offenders: string[] = [];
  for (const file of files.filter((f) => f.endsWith(".ts"))) {
    for (const { line, argument } of findCallSpreads(await Deno.readTextFile(file))) {
      offenders.push(`${file.slice(ROOT.pathname.length)}:${line}: ...${argument}`);
    }
  }
  deepStrictEqual(offenders, [], "use a loop or reduce instead of spreading into a call");
});
