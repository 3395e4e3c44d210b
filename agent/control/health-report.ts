// Health of the local instances, as the server learns it: the full state goes in every hello, and
// changes in between go out as `health` messages, batched per turn of the event loop so a burst of
// flips (a dependency going down under several services) is one message.
import type { Logger } from '../../shared/log.js';
import type { HealthMsg } from '../../shared/protocol.js';

/** What the agent needs from agent/health's monitor (see health-link.ts). */
export interface HealthSource {
  start(): void;
  stop(): void;
  isHealthy(service: string): boolean;
  on(event: 'change', listener: (service: string, healthy: boolean) => void): unknown;
  off(event: 'change', listener: (service: string, healthy: boolean) => void): unknown;
}

const MAX_CHANGES = 256; // the protocol's cap per message

export class HealthReporter {
  readonly #pending = new Map<string, boolean>();
  #flushQueued = false;

  constructor(
    private readonly source: HealthSource,
    private readonly send: (msg: HealthMsg) => boolean,
    private readonly log: Logger,
  ) {
    this.source.on('change', this.#onChange);
  }

  /** A new hello carried the full state: what was pending is already said. */
  connected(): void {
    this.#pending.clear();
  }

  stop(): void {
    this.source.off('change', this.#onChange);
  }

  readonly #onChange = (service: string, healthy: boolean): void => {
    this.log.info({ service, healthy }, healthy ? 'local instance is healthy' : 'local instance is unhealthy');
    this.#pending.set(service, healthy);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      this.flush();
    });
  };

  flush(): void {
    while (this.#pending.size > 0) {
      const changes = [...this.#pending].slice(0, MAX_CHANGES).map(([service, healthy]) => ({ service, healthy }));
      // Not connected: keep them; the next hello supersedes them anyway.
      if (!this.send({ type: 'health', changes })) return;
      for (const c of changes) this.#pending.delete(c.service);
    }
  }
}
