// Publishing plugmesh events from Node, as meshkit/events does from Python.
//
// An event is a plugmesh.events.v1.Event envelope (CloudEvents attributes, the payload
// packed as google.protobuf.Any) in binary protobuf, published to JetStream on
// "plugmesh.events.<type>", where the type is the payload message's
// (plugmesh.options.v1.event) option. "Nats-Msg-Id" is the event id, so JetStream drops
// a second copy within its dedupe window; "traceparent"/"tracestate" carry the trace of
// the request that caused it. There is no outbox here: publish() resolves once JetStream
// has acknowledged the event, and a caller answers only then.
'use strict';

const crypto = require('node:crypto');
const { connect, headers: natsHeaders } = require('nats');

const SUBJECT_PREFIX = 'plugmesh.events.';
const SPECVERSION = '1.0';
const CONTENT_TYPE = 'application/protobuf';
const TYPE_URL_PREFIX = 'type.googleapis.com/';
const EVENT_OPTION = '(plugmesh.options.v1.event).type';
const CONNECT_TIMEOUT_MS = 3000;
const PUBLISH_TIMEOUT_MS = 5000;
// version-traceid-parentid-flags; all-zero ids are invalid (W3C trace context).
const TRACEPARENT = /^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A time-ordered UUID (version 7), like the ids of the Python publisher. */
function uuid7() {
  const bytes = crypto.randomBytes(16);
  bytes.writeUIntBE(Date.now(), 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  const parts = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20)];
  return [...parts, hex.slice(20)].join('-');
}

/** The trace context of a call's metadata, or a new root context when it has none. */
function traceOf(metadata) {
  const [parent] = metadata.get('traceparent');
  const traceparent = typeof parent === 'string' ? parent.trim().toLowerCase() : '';
  if (TRACEPARENT.test(traceparent)) {
    const [state] = metadata.get('tracestate');
    return { traceparent, tracestate: typeof state === 'string' ? state : '' };
  }
  const id = `${crypto.randomBytes(16).toString('hex')}-${crypto.randomBytes(8).toString('hex')}`;
  return { traceparent: `00-${id}-00`, tracestate: '' };
}

/** The event type a payload message declares with (plugmesh.options.v1.event). */
function eventTypeOf(payloadType) {
  const type = payloadType.options && payloadType.options[EVENT_OPTION];
  if (!type) throw new Error(`${payloadType.fullName} is not an event payload`);
  return type;
}

/** Builds envelopes with the types of a protobufjs root and publishes them. */
class EventPublisher {
  /**
   * @param {object} root a protobufjs Root holding plugmesh.events.v1.Event and the payloads
   * @param {string} url the NATS server, for example "nats://127.0.0.1:4222"
   * @param {string} service the producer's name; the source is "/plugmesh/<service>"
   */
  constructor(root, url, service) {
    this.root = root;
    this.url = url;
    this.source = `/plugmesh/${service}`;
    this.Event = root.lookupType('plugmesh.events.v1.Event');
    this.connection = null;
  }

  /** The binary envelope of `payload`: a plain object of message type `typeName`, enums by name. */
  envelope(typeName, payload, subject, id = uuid7(), now = Date.now()) {
    const payloadType = this.root.lookupType(typeName);
    const event = this.Event.create({
      id,
      source: this.source,
      specversion: SPECVERSION,
      type: eventTypeOf(payloadType),
      time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 },
      subject,
      datacontenttype: CONTENT_TYPE,
      data: {
        type_url: TYPE_URL_PREFIX + payloadType.fullName.replace(/^\./, ''),
        value: payloadType.encode(payloadType.fromObject(payload)).finish(),
      },
    });
    return { id, type: event.type, data: this.Event.encode(event).finish() };
  }

  /**
   * Publishes one event and waits for JetStream's acknowledgement.
   * @returns {Promise<{id: string, type: string, seq: number, duplicate: boolean}>}
   */
  async publish(typeName, payload, { subject = '', trace }) {
    const event = this.envelope(typeName, payload, subject);
    const headers = natsHeaders();
    headers.set('traceparent', trace.traceparent);
    if (trace.tracestate) headers.set('tracestate', trace.tracestate);
    const js = (await this.connect()).jetstream();
    // msgID is sent as the "Nats-Msg-Id" header.
    const ack = await js.publish(SUBJECT_PREFIX + event.type, event.data, {
      msgID: event.id,
      headers,
      timeout: PUBLISH_TIMEOUT_MS,
    });
    return { id: event.id, type: event.type, seq: ack.seq, duplicate: ack.duplicate };
  }

  /** The NATS connection, made at the first publish; a failed attempt is retried next time. */
  connect() {
    if (!this.connection) {
      this.connection = connect({
        servers: this.url,
        name: this.source,
        timeout: CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
      }).catch((error) => {
        this.connection = null;
        throw error;
      });
    }
    return this.connection;
  }

  /** Sends what is buffered and closes the connection. Safe to call twice. */
  async close() {
    const pending = this.connection;
    this.connection = null;
    if (!pending) return;
    try {
      await (await pending).drain();
    } catch {
      // Never connected, or already closed: nothing to drain.
    }
  }
}

module.exports = { EventPublisher, traceOf, uuid7 };
