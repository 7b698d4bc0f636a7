/**
 * Group commit: the writers' appends that arrive while a write (and its fsync, or transaction) is
 * in progress wait together and go out as ONE write + ONE fsync (one transaction) as soon as the
 * current one is done. Each caller is still answered only once its own batch is durable, with its
 * own result; a failed commit fails every batch of its group. Under load the cost of an fsync is
 * shared by everything that queued up during the previous one, so the writer keeps up with any
 * number of concurrent callers instead of falling behind by one fsync per record.
 */
export class GroupCommit<T, R> {
  private waiting: { batch: readonly T[]; resolve: (result: R) => void; reject: (error: unknown) => void }[] = [];
  private scheduled = false;
  private items = 0;

  private chain: Promise<unknown> = Promise.resolve();

  /**
   * @param commit writes every batch of a group at once; resolves with one result per batch, in order.
   * @param schedule runs a task after the writer's other queued work (its serialising queue);
   *   by default the groups are only serialised among themselves.
   */
  constructor(
    private readonly commit: (batches: readonly (readonly T[])[]) => Promise<R[]>,
    private readonly schedule: (task: () => Promise<void>) => Promise<void> = (task) => {
      const run = this.chain.then(task);
      this.chain = run.catch(() => undefined);
      return run;
    },
  ) {}

  /** Resolves once the groups scheduled so far are done (with the default schedule). */
  async idle(): Promise<void> {
    await this.chain;
  }

  /** Items handed to add() and not yet committed (or failed). */
  get backlog(): number {
    return this.items;
  }

  /**
   * Takes the batches waiting for the next group out of it, for the caller to write some other
   * way (synchronously, at process exit); their add() promises never settle.
   */
  takeWaiting(): T[] {
    const taken = this.waiting.flatMap((g) => [...g.batch]);
    this.items -= taken.length;
    this.waiting = [];
    return taken;
  }

  add(batch: readonly T[]): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ batch, resolve, reject });
      this.items += batch.length;
      if (this.scheduled) return;
      this.scheduled = true;
      // Everything that is waiting when the task STARTS goes into its group: the appends made
      // during the previous write are all in the next one.
      void this.schedule(() => this.run()).catch(() => undefined);
    });
  }

  private async run(): Promise<void> {
    this.scheduled = false;
    const group = this.waiting;
    this.waiting = [];
    try {
      const results = await this.commit(group.map((g) => g.batch));
      group.forEach((g, i) => g.resolve(results[i]!));
    } catch (error) {
      for (const g of group) g.reject(error);
    } finally {
      for (const g of group) this.items -= g.batch.length;
    }
  }
}
