/**
 * Loads Envoy's own xDS v3 .proto files (the copy shipped with the proxyless gRPC xDS client
 * package) once per process, so every byte we put on the wire is encoded by the real schema.
 *
 * Why both protobufjs and proto-loader: proto-loader turns the service definitions into what
 * grpc-js serves, and the protobufjs Root lets a proto3-JSON parser turn our canonical JSON
 * resources into messages packed into `google.protobuf.Any` (xds_protocol "Resource Types").
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
// Importing proto-loader also registers google/protobuf/descriptor.proto with protobufjs, which the
// Envoy protos import for their options; the package does not ship that file.
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { fromProto3JSON } from 'proto3-json-serializer';
import type { JSONValue } from 'proto3-json-serializer';
import { MeshregError } from '../../proto/errors.js';

/** The .proto files whose messages and services the xDS server uses. */
const ENTRY_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/endpoint/v3/eds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
];

/** How decoded requests look: field names as in the .proto (snake_case), enums by name. */
export const LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** The loaded schema: a protobufjs Root and the grpc-js package definition built from it. */
export interface EnvoyProtos {
  readonly root: protobuf.Root;
  readonly packageDefinition: protoLoader.PackageDefinition;
}

/** A resource packed as `google.protobuf.Any` in the shape grpc-js serializes. */
export interface PackedAny {
  readonly type_url: string;
  readonly value: Buffer;
}

let loaded: EnvoyProtos | undefined;

/** The include directories inside the xDS client package (it has no `exports` map). */
export function envoyProtoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const base = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const dirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(base, 'deps', d));
  for (const dir of dirs) {
    if (!existsSync(dir)) throw new MeshregError('internal', `Envoy protos not found in ${dir}`);
  }
  return dirs;
}

/** Loads (once) and returns the Envoy schema. Throws only when the package is broken. */
export function loadEnvoyProtos(): EnvoyProtos {
  if (loaded !== undefined) return loaded;
  const includeDirs = envoyProtoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of includeDirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(ENTRY_FILES, { keepCase: true });
  root.resolveAll();
  const packageDefinition = protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS);
  loaded = { root, packageDefinition };
  return loaded;
}

/**
 * Encodes one canonical proto3-JSON resource (with its `@type`) into an Any.
 * Throws a MeshregError('internal') when the JSON does not fit the schema: that is our bug.
 */
export function packAny(
  protos: EnvoyProtos,
  typeUrl: string,
  json: Readonly<Record<string, unknown>>,
): PackedAny {
  const typeName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  const type = protos.root.lookupType(typeName);
  // The Any's @type is ours to set; the message itself has no such field.
  const fields: Record<string, unknown> = { ...json };
  delete fields['@type'];
  const message = fromProto3JSON(type, fields as JSONValue);
  if (message === null) throw new MeshregError('internal', `resource does not fit ${typeName}`);
  return { type_url: typeUrl, value: Buffer.from(type.encode(message).finish()) };
}
