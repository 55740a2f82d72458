/**
 * An unbounded push/pull queue that is also an async iterable: producers push() from callbacks,
 * one consumer iterates. close() ends the iteration after the queued items; fail() ends it with
 * an error. Pushes after close are dropped.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private failer: ((e: unknown) => void) | undefined;
  private done = false;
  private error: unknown;

  push(item: T): void {
    if (this.done) return;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = this.failer = undefined;
      waiter({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  close(): void {
    this.done = true;
    this.waiter?.({ value: undefined, done: true });
    this.waiter = this.failer = undefined;
  }

  fail(error: unknown): void {
    this.error = error;
    this.done = true;
    this.failer?.(error);
    this.waiter = this.failer = undefined;
  }

  get closed(): boolean {
    return this.done;
  }

  /** Items pushed and not taken yet. */
  get length(): number {
    return this.items.length;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.error !== undefined) return Promise.reject(this.error);
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = resolve;
          this.failer = reject;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
