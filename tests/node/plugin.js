#!/usr/bin/env node
// A plugmesh plugin written in Node: it serves test.greeter.v1.GreeterService (loaded at
// run time from protos/ with @grpc/proto-loader; nothing is generated), grpc.health.v1.Health
// and server reflection, and registers with the registry like any plugin does:
// RegisterInstance without descriptors (the registry reads the schema over reflection),
// RenewLease three times per lease, registering again when the registry forgot it, and
// DeregisterInstance on SIGTERM or SIGINT. SendGreeting needs a caller identity signed
// by the gateway (identity.js) and publishes a "greeter.greeted" event (events.js).
// SIGUSR1 sets its health to NOT_SERVING, SIGUSR2 back to SERVING. With --hook it also
// hooks into the MCP gateway's tool calls (hook.js).
//
// Usage: node plugin.js [--include DIR]... [--name SERVICE] [--address HOST:PORT] [--hook]
//   PLUGMESH_REGISTRY_ADDRESS      the registry (default 127.0.0.1:50050)
//   PLUGMESH_REGISTRATION_SECRET   sent as "plugmesh-registration-secret" when set; also
//                                  the key callers' identities are verified with
//   PLUGMESH_NATS_URL              where events go (default nats://127.0.0.1:4222)
// --include names directories holding google/api/*.proto and google/protobuf/*.proto.
// Once registered it prints one JSON line to stdout: {"address", "instance_id", "pid"}.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');
const { HealthImplementation } = require('grpc-health-check');
const { loadDescriptors, reflectionDefinition } = require('./descriptors');
const { StatusErrors } = require('./errors');
const { EventPublisher, traceOf } = require('./events');
const { IdentityError, identityOf, signingKey } = require('./identity');
const { DECLARATION_PROTO, HOOK_PROTO, HOOK_SERVICE, hookHandlers } = require('./hook');

const HERE = __dirname;
const REPO = path.resolve(HERE, '..', '..');
const GREETER_PROTO = 'test/greeter/v1/greeter.proto';
const GREETER_SERVICE = 'test.greeter.v1.GreeterService';
// The service whose (plugmesh.options.v1.plugin) declares the hook (it has no methods).
const HOOK_DECLARATION = 'test.greeter.v1.GreeterHook';
const REGISTRY_PROTO = 'plugmesh/registry/v1/registry.proto';
const SECRET_METADATA_KEY = 'plugmesh-registration-secret';
// Health checking and reflection, described by reflection too (grpcurl resolves a method's
// types over reflection before it calls it): the .proto files their packages ship.
const HEALTH_PROTOS = path.join(
  path.dirname(require.resolve('grpc-health-check/package.json')),
  'proto',
);
const REFLECTION_PROTOS = path.join(
  path.dirname(require.resolve('@grpc/reflection/package.json')),
  'build',
  'proto',
);
const INFRASTRUCTURE = [
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
];
const INFRASTRUCTURE_PROTOS = [
  ['health/v1/health.proto', [HEALTH_PROTOS]],
  ['grpc/reflection/v1/reflection.proto', [REFLECTION_PROTOS]],
  ['grpc/reflection/v1alpha/reflection.proto', [REFLECTION_PROTOS]],
];
// Refusals that registering again cannot fix (as in meshkit/registration.py).
const FINAL = new Set([
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.ALREADY_EXISTS,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.FAILED_PRECONDITION,
]);
const CALL_TIMEOUT_MS = 5000;
// plugmesh.events.v1.ActorType of each kind of identity.
const ACTOR_TYPES = {
  user: 'ACTOR_TYPE_USER',
  machine: 'ACTOR_TYPE_MACHINE',
  service: 'ACTOR_TYPE_SERVICE',
};

function parseArgs(argv) {
  const options = { includes: [], name: 'node-greeter', address: '127.0.0.1:0', hook: false };
  for (let i = 0; i < argv.length; i += 1) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--hook':
        options.hook = true;
        i -= 1; // takes no value
        break;
      case '--include':
        options.includes.push(value);
        break;
      case '--name':
        options.name = value;
        break;
      case '--address':
        options.address = value;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
    i += 1;
  }
  return options;
}

function log(message, fields = {}) {
  process.stderr.write(`${JSON.stringify({ message, ...fields })}\n`);
}

function load(file, includeDirs) {
  return protoLoader.loadSync(file, {
    includeDirs,
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
}

function invalid(errors, field, message) {
  return errors.error(grpc.status.INVALID_ARGUMENT, message, 'INVALID_FIELD', { field });
}

/** SayHello: greets anyone. */
function sayHello(errors) {
  return (call, callback) => {
    const { name, excitement } = call.request;
    if (!name) {
      callback(invalid(errors, 'name', 'name must not be empty'));
      return;
    }
    if (excitement < 0 || excitement > 10) {
      callback(invalid(errors, 'excitement', 'excitement must be between 0 and 10'));
      return;
    }
    callback(null, {
      message: greeting(name, excitement),
      servedBy: `node ${process.pid}`,
    });
  };
}

function greeting(name, excitement = 0) {
  return `Hello, ${name}${'!'.repeat(excitement)}`;
}

/** SendGreeting: greets on behalf of a verified caller and publishes "greeter.greeted". */
function sendGreeting(publisher, key, errors) {
  return async (call, callback) => {
    let caller;
    try {
      caller = identityOf(call.metadata, key);
    } catch (error) {
      // Anything but a refused identity is a bug here: INTERNAL, never an unhandled rejection.
      const refused = error instanceof IdentityError;
      const code = refused ? grpc.status.UNAUTHENTICATED : grpc.status.INTERNAL;
      callback(errors.error(code, error.message, refused ? error.reason : 'INTERNAL'));
      return;
    }
    if (caller === null) {
      callback(
        errors.error(
          grpc.status.UNAUTHENTICATED,
          'SendGreeting needs an authenticated caller',
          'AUTHENTICATION_REQUIRED',
        ),
      );
      return;
    }
    const { name } = call.request;
    if (!name) {
      callback(invalid(errors, 'name', 'name must not be empty'));
      return;
    }
    const message = greeting(name);
    const actor = { type: ACTOR_TYPES[caller.kind], id: caller.sub, display_name: caller.email };
    try {
      const event = await publisher.publish(
        'test.greeter.v1.Greeted',
        { actor, name, message },
        { subject: `greetings/${name}`, trace: traceOf(call.metadata) },
      );
      log('published', { event_id: event.id, type: event.type, seq: event.seq });
      callback(null, { message, eventId: event.id, servedBy: `node ${process.pid}` });
    } catch (error) {
      log('publishing failed', { error: String(error) });
      callback(
        errors.error(
          grpc.status.UNAVAILABLE,
          `the greeter.greeted event could not be published: ${error.message}`,
          'EVENT_NOT_PUBLISHED',
        ),
      );
    }
  };
}

// Mutual TLS inside the mesh when PLUGMESH_TLS_CERT_FILE, _KEY_FILE and _CA_FILE are set:
// the server requires a client certificate of the mesh CA, the registry channel presents
// the plugin's own and checks the mesh-wide name every member's certificate carries.
const MESH_SERVER_NAME = 'mesh.plugmesh.internal';

function meshTls() {
  const files = ['CERT', 'KEY', 'CA'].map((name) => process.env[`PLUGMESH_TLS_${name}_FILE`]);
  if (!files.every(Boolean)) return null;
  const [cert, key, ca] = files.map((file) => fs.readFileSync(file));
  return { cert, key, ca };
}

function serverCredentials(tls) {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const pair = { cert_chain: tls.cert, private_key: tls.key };
  return grpc.ServerCredentials.createSsl(tls.ca, [pair], true);
}

function channelArguments(tls) {
  if (!tls) return [grpc.credentials.createInsecure(), {}];
  const options = {
    'grpc.ssl_target_name_override': MESH_SERVER_NAME,
    'grpc.default_authority': MESH_SERVER_NAME,
  };
  return [grpc.credentials.createSsl(tls.ca, tls.key, tls.cert), options];
}

function bind(server, address, tls) {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, serverCredentials(tls), (error, port) => {
      if (error) reject(error);
      else resolve(port);
    });
  });
}

function unary(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + CALL_TIMEOUT_MS);
    client[method](request, metadata, { deadline }, (error, response) => {
      if (error) reject(error);
      else resolve(response);
    });
  });
}


/** Keeps one instance registered until stop(). */
class Registrar {
  constructor(client, registration, secret) {
    this.client = client;
    this.registration = registration;
    this.metadata = new grpc.Metadata();
    if (secret) this.metadata.set(SECRET_METADATA_KEY, secret);
    this.instanceId = '';
    this.stopped = false;
    this.wake = null;
  }

  /** Registers (retrying while the registry is unreachable), then renews in the background. */
  async start(onRegistered) {
    let failures = 0;
    while (!this.stopped) {
      let renewEveryMs;
      try {
        renewEveryMs = await this.register();
        failures = 0;
        onRegistered(this.instanceId);
        onRegistered = () => {};
        await this.renewUntilForgotten(renewEveryMs);
      } catch (error) {
        if (FINAL.has(error.code)) throw error;
        const delay = Math.min(50 * 2 ** failures, 2000);
        failures += 1;
        log('registry call failed; retrying', { code: error.code, retry_in_ms: delay });
        await this.pause(delay);
      }
    }
  }

  async register() {
    const response = await unary(
      this.client,
      'RegisterInstance',
      this.registration,
      this.metadata,
    );
    this.instanceId = response.instance.instanceId;
    const lease = response.leaseDuration;
    const leaseMs = lease ? Number(lease.seconds) * 1000 + lease.nanos / 1e6 : 10000;
    log('registered', { instance_id: this.instanceId, lease_ms: leaseMs });
    // Three renewals per lease, so one lost renewal never lets it lapse.
    return (leaseMs || 10000) / 3;
  }

  async renewUntilForgotten(everyMs) {
    while (!this.stopped) {
      await this.pause(everyMs);
      if (this.stopped) return;
      try {
        await unary(this.client, 'RenewLease', { instanceId: this.instanceId }, this.metadata);
      } catch (error) {
        if (error.code === grpc.status.NOT_FOUND) {
          log('the registry forgot this instance; registering again');
          return;
        }
        throw error;
      }
    }
  }

  pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async stop() {
    this.stopped = true;
    if (this.wake) this.wake();
    if (!this.instanceId) return;
    try {
      await unary(
        this.client,
        'DeregisterInstance',
        { instanceId: this.instanceId },
        this.metadata,
      );
      log('deregistered', { instance_id: this.instanceId });
    } catch (error) {
      log('deregistration failed', { code: error.code, details: error.details });
    }
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const includes = options.includes.map((dir) => path.resolve(dir));
  const greeterIncludes = [path.join(HERE, 'protos'), path.join(REPO, 'protos'), ...includes];
  const greeter = load(GREETER_PROTO, greeterIncludes);
  // Reflection serves descriptors made from the .proto files, not proto-loader's, which
  // lose the (google.api.http) rules the gateway routes by (see descriptors.js).
  const { root, files } = loadDescriptors(GREETER_PROTO, greeterIncludes);
  const hooked = options.hook ? [DECLARATION_PROTO, HOOK_PROTO] : [];
  for (const file of hooked) {
    for (const [name, proto] of loadDescriptors(file, greeterIncludes).files) {
      files.set(name, proto);
    }
  }
  for (const [file, dirs] of INFRASTRUCTURE_PROTOS) {
    for (const [name, proto] of loadDescriptors(file, [...dirs, ...includes]).files) {
      files.set(name, proto);
    }
  }
  const registryDefinition = load(REGISTRY_PROTO, [path.join(REPO, 'protos'), ...includes]);
  const secret = process.env.PLUGMESH_REGISTRATION_SECRET;
  const natsUrl = process.env.PLUGMESH_NATS_URL || 'nats://127.0.0.1:4222';
  const publisher = new EventPublisher(root, natsUrl, options.name);
  const errors = new StatusErrors(greeterIncludes, options.name);

  const server = new grpc.Server();
  const greeterPackage = grpc.loadPackageDefinition(greeter);
  server.addService(greeterPackage.test.greeter.v1.GreeterService.service, {
    sayHello: sayHello(errors),
    sendGreeting: sendGreeting(publisher, signingKey(secret), errors),
  });
  const served = [GREETER_SERVICE];
  if (options.hook) {
    const hooks = grpc.loadPackageDefinition(load(HOOK_PROTO, greeterIncludes));
    server.addService(hooks.plugmesh.mcp.v1.ToolCallHookService.service, hookHandlers(options.name));
    served.push(HOOK_SERVICE);
  }
  const health = new HealthImplementation(
    Object.fromEntries([['', 'SERVING'], ...served.map((name) => [name, 'SERVING'])]),
  );
  const setHealth = (status) => {
    log('health', { status });
    health.setStatus('', status);
    for (const name of served) health.setStatus(name, status);
  };
  health.addToServer(server);
  // Only what it serves: the hook's protos import others' services (McpServerService),
  // which the registry would take for this plugin's.
  const reflected = [...served, ...(options.hook ? [HOOK_DECLARATION] : []), ...INFRASTRUCTURE];
  new ReflectionService(reflectionDefinition(files), { services: reflected }).addToServer(server);

  const host = options.address.slice(0, options.address.lastIndexOf(':'));
  const tls = meshTls();
  const port = await bind(server, options.address, tls);
  const address = `${host}:${port}`;

  const registryPackage = grpc.loadPackageDefinition(registryDefinition);
  const RegistryService = registryPackage.plugmesh.registry.v1.RegistryService;
  const registryAddress = process.env.PLUGMESH_REGISTRY_ADDRESS || '127.0.0.1:50050';
  const client = new RegistryService(registryAddress, ...channelArguments(tls));
  const registrar = new Registrar(
    client,
    {
      service: options.name,
      address,
      // No version: the registry takes the one of the service's (plugmesh.options.v1.plugin).
      metadata: { pid: String(process.pid), language: 'node' },
    },
    secret,
  );

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal });
    setHealth('NOT_SERVING');
    await registrar.stop();
    client.close();
    await publisher.close();
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR1', () => setHealth('NOT_SERVING'));
  process.on('SIGUSR2', () => {
    if (!stopping) setHealth('SERVING');
  });

  try {
    await registrar.start((instanceId) => {
      process.stdout.write(
        `${JSON.stringify({ address, instance_id: instanceId, pid: process.pid })}\n`,
      );
    });
  } catch (error) {
    log('registration refused', { code: error.code, details: error.details });
    server.forceShutdown();
    process.exit(2);
  }
}

main().catch((error) => {
  log('failed', { error: String(error && error.stack ? error.stack : error) });
  process.exit(1);
});
