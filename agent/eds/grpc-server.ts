/**
 * The gRPC xDS v3 server: ADS (`AggregatedDiscoveryService/StreamAggregatedResources`) and EDS
 * (`EndpointDiscoveryService/StreamEndpoints`), state of the world. Delta methods are left to
 * grpc-js's default UNIMPLEMENTED answer; clients fall back to SotW (xds_protocol "Incremental xDS"
 * is optional for servers).
 *
 * Each stream runs its own {@link SotwStream}; a bad request ends that stream with
 * INVALID_ARGUMENT and nothing else (invariant 5).
 */
import * as grpc from '@grpc/grpc-js';
import { MeshregError } from '../../proto/errors.js';
import { silentLogger, type Logger } from '../../proto/runtime/log.js';
import type { EndpointSource } from './endpoint-source.js';
import { loadEnvoyProtos, packAny, type EnvoyProtos, type PackedAny } from './envoy-protos.js';
import type { CachedResource } from './snapshot-cache.js';
import { SotwStream } from './sotw-stream.js';
import { TYPE_URLS, type ResourceTypeUrl } from './type-urls.js';
import { xdsViewFor, type XdsView } from './xds-view.js';

/** Options of {@link startXdsServer}. */
export interface XdsServerOptions {
  /** Interface to bind; loopback by default, like the rest of the agent. */
  readonly host?: string;
  /** TCP port; 0 picks a free one (the bound port is returned). */
  readonly port?: number;
  readonly source: EndpointSource;
  readonly logger?: Logger;
  /** The shared view of `source` by default, so gRPC and REST agree on versions. */
  readonly view?: XdsView;
}

/** A running server. */
export interface XdsServerHandle {
  readonly port: number;
  /** Stops accepting streams, cancels open ones and resolves when the server is down. */
  close(): Promise<void>;
}

/** Starts the xDS server and resolves once it listens. Rejects when the port cannot be bound. */
export async function startXdsServer(options: XdsServerOptions): Promise<XdsServerHandle> {
  const protos = loadEnvoyProtos();
  const logger = options.logger ?? silentLogger;
  const view = options.view ?? xdsViewFor(options.source, logger);
  const server = new grpc.Server();
  const serve = streamHandler(protos, view, logger);
  server.addService(serviceOf(protos, 'envoy.service.discovery.v3.AggregatedDiscoveryService'), {
    StreamAggregatedResources: serve(undefined),
  });
  server.addService(serviceOf(protos, 'envoy.service.endpoint.v3.EndpointDiscoveryService'), {
    StreamEndpoints: serve(TYPE_URLS.endpoint),
  });
  const host = options.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    // IPv6 literals need brackets in a gRPC target.
    const target = host.includes(':') ? `[${host}]:${options.port ?? 0}` : `${host}:${options.port ?? 0}`;
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error === null) resolve(bound);
      else reject(new MeshregError('unavailable', `cannot listen on ${target}`, { cause: error }));
    });
  });
  logger.info('xds: server listening', { host, port });
  return { port, close: () => shutdown(server) };
}

function serviceOf(protos: EnvoyProtos, name: string): grpc.ServiceDefinition {
  const definition = protos.packageDefinition[name];
  if (definition === undefined || 'format' in definition) {
    throw new MeshregError('internal', `service ${name} missing from the Envoy protos`);
  }
  return definition;
}

/** Builds the bidi-stream handler; `defaultTypeUrl` is set for single-type services. */
function streamHandler(protos: EnvoyProtos, view: XdsView, logger: Logger) {
  const packed = new WeakMap<CachedResource, PackedAny>();
  // Resources are immutable and shared by every node, so each is encoded once.
  const encode = (resource: CachedResource, typeUrl: ResourceTypeUrl): PackedAny => {
    let any = packed.get(resource);
    if (any === undefined) {
      any = packAny(protos, typeUrl, resource.body);
      packed.set(resource, any);
    }
    return any;
  };
  let streams = 0;
  return (defaultTypeUrl: ResourceTypeUrl | undefined) =>
    (call: grpc.ServerDuplexStream<unknown, unknown>): void => {
      streams += 1;
      const streamId = `grpc-${streams}`;
      const log = logger.child({ stream: streamId, peer: call.getPeer() });
      const stream = new SotwStream<PackedAny>({
        view,
        streamId,
        encode,
        logger: log,
        send: (response) => call.write(response),
        ...(defaultTypeUrl === undefined ? {} : { defaultTypeUrl }),
      });
      const fail = (code: grpc.status, details: string): void => {
        stream.close();
        call.emit('error', { code, details });
      };
      call.on('data', (request: unknown) => {
        let problem: MeshregError | undefined;
        try {
          problem = stream.onRequest(request);
        } catch (error) {
          log.error('xds: request failed', { error });
          fail(grpc.status.INTERNAL, 'internal error');
          return;
        }
        if (problem !== undefined) {
          log.warn('xds: ending stream after a bad request', { error: problem.message });
          fail(grpc.status.INVALID_ARGUMENT, problem.message);
        }
      });
      call.on('end', () => {
        stream.close();
        call.end();
      });
      call.on('cancelled', () => {
        stream.close();
      });
      call.on('close', () => {
        stream.close();
      });
    };
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    // Open xDS streams never end on their own, so a graceful drain would wait forever.
    server.forceShutdown();
    resolve();
  });
}
