// The coordinator's view of free GPUs, indexed for best-fit placement. A worker is split into one block per
// GPU type (mixed hosts exist); a job must fit inside one block. Lookups cost O(distinct free counts), never
// O(workers), so placement cost does not grow with the fleet or the backlog.

export interface WorkerGpu {
  index: number;
  type: string; // display name, e.g. "H100"
  typeKey: string; // upper-cased match key
}

export interface WorkerCapacity {
  workerId: string;
  shard: string;
  poolId: string;
  gpus: WorkerGpu[];
  /** GPU indices not held by any lease. */
  free: number[];
  /** Only alive, non-draining workers take new work. */
  schedulable: boolean;
  version: number;
}

export interface Block {
  key: string; // `${workerId}/${typeKey}`
  workerId: string;
  shard: string;
  poolId: string;
  typeKey: string;
  typeName: string;
  indices: number[];
  free: Set<number>;
  schedulable: boolean;
}

export interface TypeStats {
  typeName: string;
  workers: number;
  largestBlock: number; // GPUs of this type on the biggest schedulable worker
  largestFree: number;
  freeBlocks: number; // schedulable blocks with at least one free GPU
  freeGpus: number;
}

export class CapacityIndex {
  private blocks = new Map<string, Block>();
  private byWorker = new Map<string, string[]>();
  // typeKey → free count → block keys (only schedulable blocks with free > 0)
  private buckets = new Map<string, Map<number, Set<string>>>();

  get size(): number {
    return this.byWorker.size;
  }

  upsert(w: WorkerCapacity): void {
    this.remove(w.workerId);
    const byType = new Map<string, WorkerGpu[]>();
    for (const g of w.gpus) {
      const list = byType.get(g.typeKey) ?? [];
      list.push(g);
      byType.set(g.typeKey, list);
    }
    const free = new Set(w.free);
    const keys: string[] = [];
    for (const [typeKey, gpus] of byType) {
      const b: Block = {
        key: `${w.workerId}/${typeKey}`,
        workerId: w.workerId,
        shard: w.shard,
        poolId: w.poolId,
        typeKey,
        typeName: gpus[0]!.type,
        indices: gpus.map((g) => g.index).sort((a, b) => a - b),
        free: new Set(gpus.map((g) => g.index).filter((i) => free.has(i))),
        schedulable: w.schedulable,
      };
      this.blocks.set(b.key, b);
      this.index(b);
      keys.push(b.key);
    }
    this.byWorker.set(w.workerId, keys);
  }

  remove(workerId: string): void {
    for (const k of this.byWorker.get(workerId) ?? []) {
      const b = this.blocks.get(k);
      if (b) this.unindex(b);
      this.blocks.delete(k);
    }
    this.byWorker.delete(workerId);
  }

  get(key: string): Block | undefined {
    return this.blocks.get(key);
  }

  /**
   * The schedulable block that fits `gpus` and leaves the fewest GPUs free afterwards (best fit).
   * typeKey "*" means any type. `allow` filters types (e.g. those the tenant has quota for).
   */
  bestFit(gpus: number, typeKey: string, allow?: (typeKey: string) => boolean): Block | null {
    let best: Block | null = null;
    let bestFree = Number.POSITIVE_INFINITY;
    const types = typeKey === "*" ? [...this.buckets.keys()].sort() : [typeKey];
    for (const t of types) {
      if (allow && !allow(t)) continue;
      const byFree = this.buckets.get(t);
      if (!byFree) continue;
      for (const [free, keys] of byFree) {
        if (free < gpus || free >= bestFree || keys.size === 0) continue;
        // Any block of this size is equally good; taking the first keeps the lookup O(1).
        best = this.blocks.get(keys.values().next().value!)!;
        bestFree = free;
      }
    }
    return best;
  }

  /** Take `gpus` indices from a block (lowest first, so jobs pack onto neighbouring GPUs). */
  take(key: string, gpus: number): number[] {
    const b = this.blocks.get(key);
    if (!b || b.free.size < gpus) throw new Error(`block ${key} cannot supply ${gpus} GPUs`);
    this.unindex(b);
    const picked = [...b.free].sort((x, y) => x - y).slice(0, gpus);
    for (const i of picked) b.free.delete(i);
    this.index(b);
    return picked;
  }

  /** Give indices back (a reservation that did not turn into a lease). */
  give(key: string, indices: number[]): void {
    const b = this.blocks.get(key);
    if (!b) return;
    this.unindex(b);
    for (const i of indices) if (b.indices.includes(i)) b.free.add(i);
    this.index(b);
  }

  stats(): Map<string, TypeStats> {
    const out = new Map<string, TypeStats>();
    for (const b of this.blocks.values()) {
      if (!b.schedulable) continue;
      const s = out.get(b.typeKey) ?? {
        typeName: b.typeName,
        workers: 0,
        largestBlock: 0,
        largestFree: 0,
        freeBlocks: 0,
        freeGpus: 0,
      };
      s.workers++;
      s.largestBlock = Math.max(s.largestBlock, b.indices.length);
      s.largestFree = Math.max(s.largestFree, b.free.size);
      if (b.free.size > 0) s.freeBlocks++;
      s.freeGpus += b.free.size;
      out.set(b.typeKey, s);
    }
    return out;
  }

  private index(b: Block): void {
    if (!b.schedulable || b.free.size === 0) return;
    let byFree = this.buckets.get(b.typeKey);
    if (!byFree) {
      byFree = new Map();
      this.buckets.set(b.typeKey, byFree);
    }
    let set = byFree.get(b.free.size);
    if (!set) {
      set = new Set();
      byFree.set(b.free.size, set);
    }
    set.add(b.key);
  }

  private unindex(b: Block): void {
    const byFree = this.buckets.get(b.typeKey);
    const set = byFree?.get(b.free.size);
    if (!set) return;
    set.delete(b.key);
    if (set.size === 0) byFree!.delete(b.free.size);
  }
}
