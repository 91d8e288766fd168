/** First in, first out, one at a time: the model has one KV state and one set of kernels. */
export class GenerationQueue {
  private busy = false;
  private readonly waiting: { start: () => void; cancel: (reason: unknown) => void }[] = [];
  private idleWaiters: (() => void)[] = [];

  get length(): number {
    return this.waiting.length;
  }

  get running(): boolean {
    return this.busy;
  }

  /**
   * Runs `work` when every earlier job has finished. A job whose signal aborts while it waits leaves the queue
   * and rejects with the signal's reason; once running, `work` is expected to watch the signal itself.
   */
  async run<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    if (this.busy) await this.turn(signal);
    else this.busy = true;
    try {
      return await work();
    } finally {
      this.next();
    }
  }

  /** Rejects every waiting job (shutdown). */
  cancelWaiting(reason: unknown): void {
    for (const job of this.waiting.splice(0)) job.cancel(reason);
  }

  /** Resolves once nothing runs. */
  idle(): Promise<void> {
    return this.busy ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  private turn(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(job);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
      };
      const job = {
        start: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        cancel: (reason: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(reason);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(job);
    });
  }

  private next(): void {
    const job = this.waiting.shift();
    if (job) {
      job.start(); // the lock passes on: busy stays true
      return;
    }
    this.busy = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
