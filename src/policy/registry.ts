export interface KeyedRegistryOptions<V> {
  /** Bound on the number of keys (default 1000). */
  maxKeys?: number;
  /** Preferred eviction victims; when none qualifies, the least recently used entry goes anyway. */
  evictable?: (value: V) => boolean;
}

/** Per-key policy objects in a bounded LRU map, created on first use. */
export class KeyedRegistry<V> {
  private readonly map = new Map<string, V>();
  private readonly maxKeys: number;
  private readonly evictable: ((value: V) => boolean) | undefined;
  private lastKey: string | undefined;

  constructor(
    private readonly create: (key: string) => V,
    options: KeyedRegistryOptions<V> = {},
  ) {
    const max = options.maxKeys ?? 1000;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxKeys must be an integer >= 1, got ${max}`);
    this.maxKeys = max;
    this.evictable = options.evictable;
  }

  get(key: string): V {
    const found = this.map.get(key);
    if (found !== undefined) {
      // Re-inserting moves the key to the LRU tail; skip it for the key used last (the common case).
      if (key !== this.lastKey) {
        this.map.delete(key);
        this.map.set(key, found);
        this.lastKey = key;
      }
      return found;
    }
    const value = this.create(key);
    this.map.set(key, value);
    this.lastKey = key;
    if (this.map.size > this.maxKeys) this.evictOne(key);
    return value;
  }

  /** The value for `key` without creating it or touching its recency. */
  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  delete(key: string): boolean {
    if (key === this.lastKey) this.lastKey = undefined;
    return this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  private evictOne(keep: string): void {
    let victim: string | undefined;
    if (this.evictable) {
      for (const [k, v] of this.map) {
        if (k !== keep && this.evictable(v)) {
          victim = k;
          break;
        }
      }
    }
    if (victim === undefined) {
      for (const k of this.map.keys()) {
        if (k !== keep) {
          victim = k;
          break;
        }
      }
    }
    if (victim !== undefined) this.map.delete(victim);
  }
}
