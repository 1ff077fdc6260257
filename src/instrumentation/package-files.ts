import { readFileSync } from "node:fs";
import { join } from "node:path";

/** A file's text, or undefined when it cannot be read. */
export function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** A JSON file's value, or undefined when it cannot be read or parsed. */
export function readJson(file: string): any {
  const text = readText(file);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The version in a package folder's package.json. */
export function readVersion(packageDir: string | undefined): string | undefined {
  return packageDir === undefined ? undefined : readJson(join(packageDir, "package.json"))?.version;
}
