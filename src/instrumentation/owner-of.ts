/** The object in `proto`'s chain (below Object.prototype) that holds `name` itself: where a patch goes. */
export function ownerOf(proto: any, name: string): any {
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    if (Object.hasOwn(p, name)) return p;
  }
  return undefined;
}
