// What lives on this host: the running agent (through its loopback admin endpoint), the ports the
// config asks for, the local services' health, and whether the applied config is the server's.
import https from 'node:https';
import net from 'node:net';
import { hostPortOf } from '../../agent/control/pin.js';
import { probeService } from '../../agent/health/index.js';
import type { HostConfig, ResolvedService } from '../../shared/host-config.js';
import { getAdmin, probePort, PROBE_TIMEOUT_MS } from './probes.js';
import { fail, pass, skip, type CheckItem } from './result.js';

/** The fields of the agent's /config_dump that the check reads. */
export interface AgentDump {
  host: string;
  appliedRevision: number | null;
  connected: boolean;
  health: Record<string, boolean>;
  listeners: Record<string, string>;
}

/** This host's agent as its admin endpoint shows it; null when none answers there (or another host's does). */
export async function readAgent(config: HostConfig): Promise<AgentDump | null> {
  const r = await getAdmin(config.admin, '/config_dump');
  if (!r || r.status !== 200) return null;
  try {
    const d = JSON.parse(r.body) as AgentDump;
    return d.host === config.name ? d : null;
  } catch {
    return null;
  }
}

const hp = (h: { host: string; port: number }): string => (net.isIPv6(h.host) ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

export async function checkPorts(config: HostConfig, agent: AgentDump | null, configFile: string): Promise<CheckItem[]> {
  const wanted: Array<{ what: string; at: { host: string; port: number }; field: string; ours: () => boolean }> = [
    { what: 'inbound', at: config.inbound, field: 'inbound:', ours: () => agent !== null },
    { what: 'admin', at: config.admin, field: 'admin:', ours: () => agent !== null },
    ...config.upstreams.map((u) => ({
      what: `upstream ${u.service}`,
      at: { host: u.bind, port: u.localPort },
      field: `upstreams[].localPort of ${u.service}`,
      ours: () => agent?.listeners[u.service] === hp({ host: u.bind, port: u.localPort }),
    })),
  ];
  const out: CheckItem[] = [];
  for (const w of wanted) {
    const name = `port ${hp(w.at)} (${w.what})`;
    const st = await probePort(w.at.host, w.at.port);
    if (st.free) out.push(pass(name, 'free'));
    else if (st.code === 'EADDRINUSE' && w.ours()) out.push(pass(name, 'held by this agent'));
    else if (st.code === 'EADDRINUSE') out.push(fail(name, 'in use by another process', `find it with \`ss -ltnp 'sport = :${w.at.port}'\` and stop it, or change ${w.field} in ${configFile}`));
    else if (st.code === 'EADDRNOTAVAIL') out.push(fail(name, `${w.at.host} is not an address of this host`, `change ${w.field} in ${configFile}`));
    else if (st.code === 'EACCES') out.push(fail(name, 'a port below 1024 needs CAP_NET_BIND_SERVICE', 'add AmbientCapabilities=CAP_NET_BIND_SERVICE to hostmesh-agent.service (the installer does it for a low --inbound port), or use a port above 1023'));
    else out.push(fail(name, `cannot bind: ${st.code}`, `change ${w.field} in ${configFile}`));
  }
  return out;
}

export async function checkAgentReady(config: HostConfig): Promise<CheckItem> {
  const name = 'agent ready';
  const r = await getAdmin(config.admin, '/readyz');
  if (!r) return fail(name, `nothing answers on ${hp(config.admin)}: the agent is not running`, 'start it: systemctl start hostmesh-agent (why it stopped: journalctl -u hostmesh-agent)');
  if (r.status === 200) return pass(name, `${hp(config.admin)}/readyz says ready`);
  return fail(name, r.body.trim() || `/readyz answered ${r.status}`, 'see the agent log: journalctl -u hostmesh-agent');
}

export async function checkServices(config: HostConfig, agent: AgentDump | null, configFile: string): Promise<CheckItem[]> {
  const out: CheckItem[] = [];
  for (const s of config.services) {
    const name = `service ${s.name}`;
    const how = describeCheck(s);
    const probe = await probeService(s.check ? s : { ...s, check: { kind: 'tcp', path: null, expectStatus: null, intervalMs: 1000, timeoutMs: Math.min(PROBE_TIMEOUT_MS, 2000), rise: 1, fall: 1 } });
    const agentSays = agent ? agent.health[s.name] : undefined;
    if (agentSays === false) out.push(fail(name, `the agent marks it unhealthy (${how}${probe.ok ? '' : `: ${probe.error}`})`, `make the service answer its check, or fix services[].check of ${s.name} in ${configFile}`));
    else if (!probe.ok) out.push(fail(name, `${how}: ${probe.error}`, `start the service on ${s.host}:${s.port}, or fix services[] ${s.name} in ${configFile}`));
    else out.push(pass(name, s.check ? `${how} passes` : `no health check configured; ${s.host}:${s.port} accepts connections`));
  }
  return out;
}

function describeCheck(s: ResolvedService): string {
  if (!s.check) return `tcp ${s.host}:${s.port}`;
  return s.check.kind === 'http' ? `GET http://${s.host}:${s.port}${s.check.path ?? '/'}` : `tcp ${s.host}:${s.port}`;
}

/**
 * Current means the server wants no newer config for this host. The agent alone can tell that it
 * is connected and applied a revision (the server pushes every change to a connected agent); with
 * an admin token the server's own comparison of hashes (inSync) settles it, nacks included.
 */
export async function checkRevision(config: HostConfig, agent: AgentDump | null, rootPem: string | null, adminToken: string | undefined): Promise<CheckItem> {
  const name = 'applied revision';
  if (!agent) return skip(name, 'not checked (the agent is not running)');
  if (agent.appliedRevision === null) return fail(name, 'the agent has applied no config yet', 'see the agent log: journalctl -u hostmesh-agent');
  if (!agent.connected) return fail(name, `revision ${agent.appliedRevision} applied, but the agent is not connected to the server, so it may be behind`, 'see why in the agent log: journalctl -u hostmesh-agent');
  if (!adminToken || !rootPem) return pass(name, `revision ${agent.appliedRevision} applied and connected (give --token or HOSTMESH_TOKEN to compare with the server)`);
  try {
    const h = await getHost(config, rootPem, adminToken);
    if (h.inSync) return pass(name, `revision ${agent.appliedRevision} is the server's current config for ${config.name}`);
    const nack = h.lastNack ? `; last nack at revision ${h.lastNack.revision}: ${h.lastNack.error}` : '';
    return fail(name, `the server holds a newer config for ${config.name} than revision ${agent.appliedRevision}${nack}`, 'see `hostmesh status` on the server and the agent log (journalctl -u hostmesh-agent)');
  } catch (e) {
    return fail(name, `cannot ask the server: ${(e as Error).message}`, 'check the admin token given with --token or HOSTMESH_TOKEN');
  }
}

function getHost(config: HostConfig, rootPem: string, token: string): Promise<{ inSync: boolean; lastNack: { revision: number; error: string } | null }> {
  const { host, port } = hostPortOf(config.server);
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host, port, path: `/v1/hosts/${encodeURIComponent(config.name)}`, ca: rootPem, agent: false, timeout: PROBE_TIMEOUT_MS, headers: { authorization: `Bearer ${token}` }, ...(net.isIP(host) ? {} : { servername: host }) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          try {
            const v = JSON.parse(body) as { inSync?: boolean; lastNack?: { revision: number; error: string } | null; error?: { message?: string } };
            if (res.statusCode !== 200) return reject(new Error(v.error?.message ?? `HTTP ${res.statusCode}`));
            resolve({ inSync: v.inSync === true, lastNack: v.lastNack ?? null });
          } catch {
            reject(new Error(`HTTP ${res.statusCode}: not JSON`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}
