// The nginx pair's PKI, made with the openssl CLI: a throwaway ECDSA P-256 CA, a server cert for
// nginx B and a client cert (clientAuth, SPIFFE-style URI SAN) for nginx A — the same shape of
// identity the mesh uses, so the pair does the same verification work.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run, type Procs } from './procs.js';

export const B_SERVER_NAME = 'b.bench.local';

export interface PairCerts {
  caCert: string;
  aCert: string;
  aKey: string;
  bCert: string;
  bKey: string;
}

export async function makePairCerts(procs: Procs, openssl: string, dir: string): Promise<PairCerts> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (n: string): string => path.join(dir, n);
  const ossl = async (args: string[]): Promise<void> => {
    const r = await run(procs, `openssl ${args[0]}`, openssl, args, 30_000, { cwd: dir });
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  };
  const serial = (): string => `0x${crypto.randomBytes(12).toString('hex')}`;

  await ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key')]);
  await ossl([
    'req', '-x509', '-new', '-key', f('ca.key'), '-sha256', '-days', '2', '-subj', '/CN=hostmesh bench CA', '-set_serial', serial(),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', f('ca.crt'),
  ]);

  const leaf = async (name: string, ext: string): Promise<void> => {
    await ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${name}.key`)]);
    await ossl(['req', '-new', '-key', f(`${name}.key`), '-subj', `/CN=${name}.bench.local`, '-out', f(`${name}.csr`)]);
    fs.writeFileSync(f(`${name}.ext`), ext);
    await ossl([
      'x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', serial(),
      '-days', '1', '-sha256', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`),
    ]);
    await ossl(['verify', '-CAfile', f('ca.crt'), f(`${name}.crt`)]);
  };
  await leaf('b', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', `subjectAltName=DNS:${B_SERVER_NAME},IP:127.0.0.1`, ''].join('\n'));
  await leaf('a', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', 'subjectAltName=URI:spiffe://bench.local/service/nginx-a', ''].join('\n'));
  return { caCert: f('ca.crt'), aCert: f('a.crt'), aKey: f('a.key'), bCert: f('b.crt'), bKey: f('b.key') };
}
