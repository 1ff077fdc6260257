import Module from "node:module";
import { sep } from "node:path";

type OnRequire = (exports: unknown, name: string, baseDir: string) => unknown;
type Require = (this: Module, id: string) => unknown;
const ModuleInternals = Module as unknown as { _resolveFilename(request: string, parent: Module): string; prototype: { require: Require } };

/**
 * A CommonJS require hook for a few modules by name, in the shape of require-in-the-middle's `Hook`:
 * `onRequire` runs when one of `modules` (a package, or a subpath of it, as the code that requires it
 * spells it) is first required from a resolved file, with the package's root; what it returns is what
 * that and every later `require` of the file get. Any other `require` costs one Set lookup, where
 * require-in-the-middle resolves every required file a second time and every file inside a watched
 * package a third: that had doubled the time the SDKs take to load.
 */
export class RequireHook {
  private readonly original: Require;
  private readonly hooked: Require;
  private unhooked = false;

  constructor(modules: readonly string[], _options: { internals?: boolean } | undefined, onRequire: OnRequire) {
    const names = new Set(modules);
    const done = new Map<string, unknown>();
    const original = ModuleInternals.prototype.require;
    const hook = this;
    this.original = original;
    this.hooked = function (this: Module, id: string) {
      // biome-ignore lint/complexity/noArguments: pass require's arguments through as they came
      const exports = original.apply(this, arguments as unknown as [string]);
      if (hook.unhooked || !names.has(id)) return exports;
      const filename = ModuleInternals._resolveFilename(id, this);
      if (done.has(filename)) return done.get(filename);
      const baseDir = packageRoot(filename, id);
      if (baseDir === undefined) return exports;
      done.set(filename, exports);
      const result = onRequire(exports, id, baseDir);
      done.set(filename, result);
      return result;
    };
    ModuleInternals.prototype.require = this.hooked;
  }

  unhook(): void {
    this.unhooked = true;
    if (ModuleInternals.prototype.require === this.hooked) ModuleInternals.prototype.require = this.original;
  }
}

/** The root of the package `id` names, from the file it resolved to (undefined outside node_modules). */
function packageRoot(filename: string, id: string): string | undefined {
  const segments = id.split("/");
  const name = segments.slice(0, id.startsWith("@") ? 2 : 1).join(sep);
  const marker = `${sep}node_modules${sep}${name}${sep}`;
  const at = filename.lastIndexOf(marker);
  return at < 0 ? undefined : filename.slice(0, at + marker.length - 1);
}
