// Local health checks of a host's services: HTTP and TCP probes, rise/fall thresholds, and the
// monitor that schedules them and reports transitions.
export { HealthMonitor, probeService, systemClock, DEFAULT_MIN_INTERVAL_MS } from './monitor.js';
export type { Clock, HealthMonitorEvents, HealthMonitorOptions, ServiceHealth } from './monitor.js';
export { httpProbe, HTTP_BODY_CAP } from './http-check.js';
export type { HttpProbeTarget } from './http-check.js';
export { tcpProbe } from './tcp-check.js';
export type { TcpProbeTarget } from './tcp-check.js';
export { Thresholds } from './thresholds.js';
export type { HealthState } from './thresholds.js';
export type { Probe, ProbeResult } from './probe.js';
