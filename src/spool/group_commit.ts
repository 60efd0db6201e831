/**
 * GroupCommit: batch work items so one expensive commit serves many callers.
 *
 * Used by the disk spool: every message stored with `sync` during the same
 * few milliseconds shares one round of fsyncs, instead of paying a serial
 * fsync each (1–10 ms on real disks). While a commit runs, new items gather
 * into the next batch, so batches grow by themselves under load and stay
 * small (low latency) when idle.
 *
 * Generic: knows nothing about files; the commit function does the work.
 *
 * @module
 */

/** Options of {@linkcode GroupCommit}. */
export interface GroupCommitOptions {
  /** Wait this long after the first item of an idle period before committing. @default 0 */
  delayMs?: number;
  /** Largest batch handed to one commit call. @default 1024 */
  maxBatch?: number;
}

interface Batch<T> {
  items: T[];
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Collects items and commits them in batches, one batch at a time.
 * A commit that throws rejects every submitter of that batch.
 *
 * @example
 * ```ts
 * const gc = new GroupCommit<string>(async (names) => { await fsyncAll(names); });
 * await Promise.all(["a", "b", "c"].map((n) => gc.submit(n))); // one commit call
 * ```
 */
export class GroupCommit<T> {
  #commit: (items: T[]) => Promise<void>;
  #delayMs: number;
  #maxBatch: number;
  #batches: Batch<T>[] = [];
  #running = false;
  #idle: Promise<void> = Promise.resolve();
  #setIdle: () => void = () => {};
  /** Number of commit calls made so far. */
  commits = 0;
  /** Number of items committed so far. */
  items = 0;

  constructor(commit: (items: T[]) => Promise<void>, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#delayMs = options.delayMs ?? 0;
    this.#maxBatch = options.maxBatch ?? 1024;
  }

  /** Add an item; resolves once the batch holding it is committed. */
  submit(item: T): Promise<void> {
    let batch = this.#batches[this.#batches.length - 1];
    if (batch === undefined || batch.items.length >= this.#maxBatch) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      batch = { items: [], promise, resolve, reject };
      this.#batches.push(batch);
    }
    batch.items.push(item);
    if (!this.#running) {
      this.#running = true;
      this.#idle = new Promise((res) => this.#setIdle = res);
      if (this.#delayMs > 0) setTimeout(() => this.#run(), this.#delayMs);
      else queueMicrotask(() => this.#run());
    }
    return batch.promise;
  }

  /** Resolves when every submitted item has been committed (or failed). */
  drain(): Promise<void> {
    return this.#idle;
  }

  async #run(): Promise<void> {
    for (let batch = this.#batches.shift(); batch; batch = this.#batches.shift()) {
      this.commits++;
      this.items += batch.items.length;
      try {
        await this.#commit(batch.items);
        batch.resolve();
      } catch (e) {
        batch.reject(e);
      }
    }
    this.#running = false;
    this.#setIdle();
  }
}
