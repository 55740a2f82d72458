/**
 * An unbounded single-consumer queue that is also an AsyncIterable: the outgoing half of the
 * agent stream. Producers `push` messages at any time; the Connect client pulls them as the
 * transport can send. `close()` ends the iteration after the queued items have been delivered
 * (a half-close); a consumer that stops early (`return()` or `throw()`, as Connect does when
 * a call is aborted) discards whatever is left.
 */
export interface AsyncQueue<T> extends AsyncIterable<T> {
  /** Enqueues a value; returns false (and drops it) once the queue is closed. */
  push(value: T): boolean;
  /** Ends the iteration after the items already queued. Idempotent. */
  close(): void;
  /** True after close() or after the consumer stopped iterating. */
  readonly closed: boolean;
  /** Items queued and not yet taken by the consumer. */
  readonly length: number;
}

/** Creates an empty, open AsyncQueue. Only one consumer may iterate it. */
export function createAsyncQueue<T>(): AsyncQueue<T> {
  let items: T[] = [];
  let head = 0;
  let closed = false;
  let waiter: ((result: IteratorResult<T>) => void) | undefined;

  const take = (): T => {
    const value = items[head] as T;
    items[head] = undefined as T;
    head++;
    if (head > 1024 && head * 2 > items.length) {
      items = items.slice(head);
      head = 0;
    }
    return value;
  };
  const finish = (): void => {
    const w = waiter;
    waiter = undefined;
    w?.({ value: undefined, done: true });
  };

  const stop = (): Promise<IteratorResult<T>> => {
    closed = true;
    items = [];
    head = 0;
    finish();
    return Promise.resolve({ value: undefined, done: true });
  };

  return {
    push(value: T): boolean {
      if (closed) return false;
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w({ value, done: false });
      } else {
        items.push(value);
      }
      return true;
    },
    close(): void {
      closed = true;
      if (items.length - head === 0) finish();
    },
    get closed(): boolean {
      return closed;
    },
    get length(): number {
      return items.length - head;
    },
    [Symbol.asyncIterator](): AsyncIterator<T> {
      return {
        next(): Promise<IteratorResult<T>> {
          if (items.length - head > 0) return Promise.resolve({ value: take(), done: false });
          if (closed) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve) => {
            waiter = resolve;
          });
        },
        return(): Promise<IteratorResult<T>> {
          return stop();
        },
        throw(): Promise<IteratorResult<T>> {
          return stop();
        },
      };
    },
  };
}
