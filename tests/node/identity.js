// Who is calling: the identity the gateway verified, as meshkit/identity.py passes it.
//
// The gateway sends "x-plugmesh-identity" (compact JSON: kind, sub, admin, email) and
// "x-plugmesh-identity-signature" (hex HMAC-SHA256 of that JSON). The HMAC key is itself
// HMAC-SHA256("plugmesh identity v1") keyed with the mesh registration secret, so only a
// process that knows the secret can sign. A caller without an identity is anonymous; an
// identity whose signature does not verify is refused.
'use strict';

const crypto = require('node:crypto');

const IDENTITY_KEY = 'x-plugmesh-identity';
const SIGNATURE_KEY = 'x-plugmesh-identity-signature';
const KEY_LABEL = 'plugmesh identity v1';
const KINDS = new Set(['user', 'machine', 'service']);

/** Raised for an identity that is present but cannot be trusted. */
class IdentityError extends Error {
  constructor(message, reason) {
    super(message);
    this.reason = reason;
  }
}

/** The HMAC key identities are signed with, or null without a secret. */
function signingKey(secret) {
  if (!secret) return null;
  return crypto.createHmac('sha256', secret).update(KEY_LABEL).digest();
}

function first(metadata, key) {
  const [value] = metadata.get(key);
  return typeof value === 'string' ? value : undefined;
}

/**
 * The verified caller in `metadata` ({kind, sub, admin, email}), or null when anonymous.
 * @throws {IdentityError} the identity is present but forged or malformed.
 */
function identityOf(metadata, key) {
  const payload = first(metadata, IDENTITY_KEY);
  if (payload === undefined || key === null) return null;
  const expected = Buffer.from(crypto.createHmac('sha256', key).update(payload).digest('hex'));
  const sent = Buffer.from(first(metadata, SIGNATURE_KEY) || '');
  if (sent.length !== expected.length || !crypto.timingSafeEqual(sent, expected)) {
    throw new IdentityError(
      "the caller's identity is not signed by the gateway",
      'IDENTITY_FORGED',
    );
  }
  let fields;
  try {
    fields = JSON.parse(payload);
  } catch {
    fields = null;
  }
  if (!fields || !KINDS.has(fields.kind) || typeof fields.sub !== 'string') {
    throw new IdentityError("the caller's identity is malformed", 'IDENTITY_MALFORMED');
  }
  return {
    kind: fields.kind,
    sub: fields.sub,
    admin: Boolean(fields.admin),
    email: typeof fields.email === 'string' ? fields.email : '',
  };
}

module.exports = { IdentityError, identityOf, signingKey };
