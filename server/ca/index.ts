export {
  CertificateAuthority,
  fingerprintOfPem,
  MAX_LEAF_TTL_MS,
  MAX_SERVER_TTL_MS,
  MIN_LEAF_TTL_MS,
  type IssuedCert,
  type IssuedServerCert,
  type ServerCertOptions,
  type SignOptions,
} from './authority.js';
export {
  ensureServerCert,
  SERVER_CERT_FILE,
  SERVER_CERT_RENEW_BEFORE_MS,
  SERVER_CERT_TTL_MS,
  SERVER_KEY_FILE,
  type ServerCert,
  type ServerCertNames,
} from './server-cert.js';
export { ROOT_CERT_FILE, ROOT_KEY_FILE } from './root.js';
