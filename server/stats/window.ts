// The server's short memory of golden metrics: agents' periodic edge summaries, kept in a ring of
// 10-second slots covering the last 10 minutes. Memory is fixed: each slot holds at most
// MAX_EDGES_PER_SLOT edges (an edge is direction × source × destination, all bounded by the
// registry's services), and a slot is cleared when the ring comes round to it again.
import { addInto, emptyLatency, goldenOf, type Direction, type EdgeStats, type EdgeSummary, type ServiceStats, type StatsView } from '../../shared/golden.js';

export const SLOT_SECONDS = 10;
export const WINDOW_SLOTS = 60;
export const MAX_WINDOW_SECONDS = SLOT_SECONDS * WINDOW_SLOTS;
const MAX_EDGES_PER_SLOT = 20_000;

/** An edge's counts summed over summaries (the same shape as one summary). */
type EdgeAgg = EdgeSummary;

interface Slot {
  /** Index of the 10 s period this slot holds (ms / 10 000), or -1 when empty. */
  period: number;
  edges: Map<string, EdgeAgg>;
}

export class StatsWindow {
  private readonly slots: Slot[] = Array.from({ length: WINDOW_SLOTS }, () => ({ period: -1, edges: new Map() }));
  /** Summaries dropped because a slot was full; exported as a metric so a cap is never silent. */
  dropped = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Add one agent's summary, counted in the period it arrived in (the server's clock, not the agent's). */
  record(edges: readonly EdgeSummary[]): void {
    const period = Math.floor(this.now() / (SLOT_SECONDS * 1000));
    const slot = this.slots[period % WINDOW_SLOTS]!;
    if (slot.period !== period) {
      slot.period = period;
      slot.edges.clear();
    }
    for (const e of edges) {
      const key = `${e.direction}\u0000${e.source}\u0000${e.destination}`;
      let agg = slot.edges.get(key);
      if (!agg) {
        if (slot.edges.size >= MAX_EDGES_PER_SLOT) {
          this.dropped++;
          continue;
        }
        agg = { direction: e.direction, source: e.source, destination: e.destination, requests: 0, failures: 0, latency: emptyLatency() };
        slot.edges.set(key, agg);
      }
      addInto(agg, e);
    }
  }

  /** Golden signals per service and per edge over the last `windowSeconds` (rounded up to whole slots). */
  view(windowSeconds: number): StatsView {
    const slotsWanted = Math.min(WINDOW_SLOTS, Math.max(1, Math.ceil(windowSeconds / SLOT_SECONDS)));
    const current = Math.floor(this.now() / (SLOT_SECONDS * 1000));
    const merged = new Map<string, EdgeAgg>();
    for (const slot of this.slots) {
      // The current slot is still filling; it counts as one of the wanted slots.
      if (slot.period < 0 || slot.period <= current - slotsWanted || slot.period > current) continue;
      for (const [key, e] of slot.edges) {
        let agg = merged.get(key);
        if (!agg) merged.set(key, (agg = { ...e, requests: 0, failures: 0, latency: emptyLatency() }));
        addInto(agg, e);
      }
    }
    const seconds = slotsWanted * SLOT_SECONDS;
    const byService = new Map<string, { inbound: EdgeAgg | null; outbound: EdgeAgg | null }>();
    const edges = new Map<string, EdgeAgg>();
    for (const e of merged.values()) {
      let s = byService.get(e.destination);
      if (!s) byService.set(e.destination, (s = { inbound: null, outbound: null }));
      const side = e.direction;
      s[side] ??= { ...e, source: '*', requests: 0, failures: 0, latency: emptyLatency() };
      addInto(s[side]!, e);
      // An edge as its caller saw it (failures to connect included); the callee's view only when
      // the caller did not report.
      const ek = `${e.source}\u0000${e.destination}`;
      const prior = edges.get(ek);
      if (!prior || (prior.direction === 'inbound' && e.direction === 'outbound')) edges.set(ek, e);
    }
    const services: ServiceStats[] = [...byService.entries()]
      .map(([service, s]) => {
        const measuredAt: Direction = s.inbound && s.inbound.requests > 0 ? 'inbound' : 'outbound';
        const agg = (measuredAt === 'inbound' ? s.inbound : s.outbound) ?? { requests: 0, failures: 0, latency: emptyLatency() };
        return { service, measuredAt, ...goldenOf(agg, seconds) };
      })
      .sort((a, b) => a.service.localeCompare(b.service));
    const edgeList: EdgeStats[] = [...edges.values()]
      .map((e) => ({ source: e.source, destination: e.destination, ...goldenOf(e, seconds) }))
      .sort((a, b) => a.destination.localeCompare(b.destination) || a.source.localeCompare(b.source));
    return { windowSeconds: seconds, services, edges: edgeList };
  }
}
