// Faithful FileDescriptorProtos for @grpc/reflection.
//
// @grpc/reflection serves the descriptors that @grpc/proto-loader makes, and those lose
// what a gateway needs (grpc/grpc-node#2595 and the protobufjs descriptor extension): one
// file per package instead of one per .proto file, no imports, and no custom options, so
// a method's (google.api.http) rule never reaches the registry. This module loads .proto
// files with protobufjs and writes one FileDescriptorProto per source file, with its real
// name, its imports, fully-qualified type names, and its options, custom ones included.
//
// Custom options are encoded with their own types and carried in the options message as
// an extension field of the same number (messages as bytes, enums as int32): the wire
// format is the same. The field is added to the options types of
// `protobufjs/ext/descriptor`, which @grpc/reflection decodes and re-encodes with, so it
// survives the round trip. File-level options (go_package, ...) are left out.
//
// Comments go into source_code_info as protoc records leading comments, so the gateway can
// describe operations, tools and fields with them. protobufjs keeps one comment per
// element, the leading one or else the trailing one on the same line, and no positions:
// every span is the start of the file (three numbers, as the field requires).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const protobuf = require('protobufjs');
const descriptor = require('protobufjs/ext/descriptor');

const { Enum, Field, Namespace, Service, Type } = protobuf;

// FieldDescriptorProto.Type of each scalar.
const SCALARS = {
  double: 1,
  float: 2,
  int64: 3,
  uint64: 4,
  int32: 5,
  fixed64: 6,
  fixed32: 7,
  bool: 8,
  string: 9,
  bytes: 12,
  uint32: 13,
  sfixed32: 15,
  sfixed64: 16,
  sint32: 17,
  sint64: 18,
};
const LABEL_OPTIONAL = 1;
const LABEL_REQUIRED = 2;
const LABEL_REPEATED = 3;
const TYPE_GROUP = 10;
const TYPE_MESSAGE = 11;
const TYPE_ENUM = 14;
const EDITION_2023 = 1000;
// Options protobufjs keeps that are fields of the descriptor, not of its options.
const FIELD_ATTRIBUTES = new Set(['default', 'json_name', 'proto3_optional', 'packed']);
/**
 * Loads `file` (a name relative to one of `includeDirs`) and everything it imports.
 * @returns {{root: protobuf.Root, files: Map<string, object>}} the loaded root and a
 *   FileDescriptorProto message (of `protobufjs/ext/descriptor`) for every loaded file.
 */
function loadDescriptors(file, includeDirs) {
  const names = new Map();
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    for (const dir of includeDirs) {
      const full = path.join(dir, target);
      if (fs.existsSync(full)) {
        names.set(full, target);
        return full;
      }
    }
    return target;
  };
  // protobufjs would take the well-known files it bundles from JSON (descriptor.proto's
  // with camelCase field names): files on disk win while this root loads.
  const hidden = {};
  for (const name of Object.keys(protobuf.common)) {
    if (name.endsWith('.proto') && includeDirs.some((dir) => fs.existsSync(path.join(dir, name)))) {
      hidden[name] = protobuf.common[name];
      delete protobuf.common[name];
    }
  }
  try {
    root.loadSync(file, { keepCase: true, alternateCommentMode: true });
  } finally {
    Object.assign(protobuf.common, hidden);
  }
  root.resolveAll();
  return { root, files: new FileWriter(names).write(root) };
}

/** A package definition that @grpc/reflection serves `files` from. */
function reflectionDefinition(files) {
  const encoded = [...files.values()].map((file) =>
    Buffer.from(descriptor.FileDescriptorProto.encode(file).finish()),
  );
  return { descriptors: { format: 'FileDescriptorProto', fileDescriptorProtos: encoded } };
}

class FileWriter {
  constructor(names) {
    this.names = names;
    this.current = null;
  }

  write(root) {
    const byFile = new Map();
    const visit = (namespace) => {
      for (const nested of namespace.nestedArray) {
        if (nested instanceof Type || nested instanceof Enum || nested instanceof Service) {
          this.group(byFile, nested).push(nested);
        } else if (nested instanceof Field) {
          this.group(byFile, nested).push(nested);
        } else if (nested instanceof Namespace) {
          visit(nested);
        }
      }
    };
    visit(root);
    const files = new Map();
    for (const [name, objects] of [...byFile.entries()].sort()) {
      files.set(name, this.file(name, objects));
    }
    return files;
  }

  group(byFile, object) {
    const name = this.fileOf(object);
    if (!byFile.has(name)) byFile.set(name, []);
    return byFile.get(name);
  }

  fileOf(object) {
    for (let current = object; current; current = current.parent) {
      if (current.filename) {
        const name = this.names.get(current.filename);
        if (!name) throw new Error(`no include directory holds ${current.filename}`);
        return name;
      }
      const bundled = bundledFiles().get(current.fullName);
      if (bundled) return bundled;
    }
    throw new Error(`cannot tell which file defines ${object.fullName}`);
  }

  file(name, objects) {
    this.current = { name, dependencies: new Set(), locations: [] };
    const edition = objects.find((object) => object._edition)?._edition || 'proto3';
    const file = {
      name,
      package: objects[0].parent.fullName.slice(1),
      messageType: [],
      enumType: [],
      service: [],
      extension: [],
    };
    if (edition === 'proto2' || edition === 'proto3') {
      file.syntax = edition;
    } else {
      file.syntax = 'editions';
      file.edition = EDITION_2023;
    }
    for (const object of objects) {
      if (object instanceof Type) {
        file.messageType.push(this.message(object, edition, [4, file.messageType.length]));
      } else if (object instanceof Enum) {
        file.enumType.push(this.enumeration(object, [5, file.enumType.length]));
      } else if (object instanceof Service) {
        file.service.push(this.service(object, [6, file.service.length]));
      } else {
        file.extension.push(this.field(object, edition, [], [7, file.extension.length]));
      }
    }
    file.dependency = [...this.current.dependencies].sort();
    if (this.current.locations.length) {
      file.sourceCodeInfo = { location: this.current.locations };
    }
    return descriptor.FileDescriptorProto.fromObject(file);
  }

  // Records `comment` as the leading comment of the element at `path`, laid out as protoc
  // lays it out (the text after each `//`, one line each).
  note(path, comment) {
    if (!comment) return;
    const text = comment
      .split('\n')
      .map((line) => ` ${line}\n`)
      .join('');
    this.current.locations.push({ path, span: [0, 0, 0], leadingComments: text });
  }

  use(object) {
    const name = this.fileOf(object);
    if (name !== this.current.name) this.current.dependencies.add(name);
  }

  message(type, edition, path) {
    this.note(path, type.comment);
    const synthetic = (oneof) =>
      oneof.fieldsArray.length === 1 && Boolean(oneof.fieldsArray[0].options?.proto3_optional);
    // Synthetic oneofs (proto3 `optional`) come after the real ones.
    const oneofs = [
      ...type.oneofsArray.filter((oneof) => !synthetic(oneof)),
      ...type.oneofsArray.filter(synthetic),
    ];
    const message = {
      name: type.name,
      field: [],
      nestedType: [],
      enumType: [],
      extension: [],
      oneofDecl: oneofs.map((oneof, index) => {
        this.note([...path, 8, index], oneof.comment);
        return { name: oneof.name, options: this.options(oneof, descriptor.OneofOptions) };
      }),
      extensionRange: (type.extensions || []).map(([start, end]) => ({ start, end: end + 1 })),
      reservedRange: [],
      reservedName: [],
      options: this.options(type, descriptor.MessageOptions),
    };
    // Extensions of this type declared elsewhere appear among its fields too.
    for (const field of type.fieldsArray.filter((one) => !one.declaringField)) {
      message.field.push(this.field(field, edition, oneofs, [...path, 2, message.field.length]));
      if (field.map) message.nestedType.push(this.mapEntry(field));
    }
    for (const nested of type.nestedArray) {
      if (nested instanceof Type) {
        const at = [...path, 3, message.nestedType.length];
        message.nestedType.push(this.message(nested, edition, at));
      } else if (nested instanceof Enum) {
        message.enumType.push(this.enumeration(nested, [...path, 4, message.enumType.length]));
      } else if (nested instanceof Field) {
        const at = [...path, 6, message.extension.length];
        message.extension.push(this.field(nested, edition, [], at));
      }
    }
    this.reserved(type, message, 1);
    return message;
  }

  // Message reserved ranges end exclusively, enum ones inclusively (as in protobufjs).
  reserved(object, proto, endOffset) {
    for (const reserved of object.reserved || []) {
      if (typeof reserved === 'string') proto.reservedName.push(reserved);
      else proto.reservedRange.push({ start: reserved[0], end: reserved[1] + endOffset });
    }
  }

  mapEntry(field) {
    const value = { name: 'value', number: 2, label: LABEL_OPTIONAL };
    this.typeOf(field, value);
    return {
      name: entryName(field.name),
      field: [
        { name: 'key', number: 1, label: LABEL_OPTIONAL, type: SCALARS[field.keyType] },
        value,
      ],
      options: { mapEntry: true },
    };
  }

  typeOf(field, proto) {
    field.resolve();
    const resolved = field.resolvedType;
    if (resolved instanceof Type) {
      proto.type = field.delimited ? TYPE_GROUP : TYPE_MESSAGE;
      proto.typeName = resolved.fullName;
      this.use(resolved);
    } else if (resolved instanceof Enum) {
      proto.type = TYPE_ENUM;
      proto.typeName = resolved.fullName;
      this.use(resolved);
    } else {
      proto.type = SCALARS[field.type];
    }
  }

  field(field, edition, oneofs, path) {
    this.note(path, field.comment);
    const proto = { name: field.name, number: field.id };
    if (field.map) {
      proto.label = LABEL_REPEATED;
      proto.type = TYPE_MESSAGE;
      proto.typeName = `${field.parent.fullName}.${entryName(field.name)}`;
      field.resolve();
      if (field.resolvedType) this.use(field.resolvedType);
    } else {
      this.typeOf(field, proto);
      if (field.repeated) proto.label = LABEL_REPEATED;
      else if (field.required && edition === 'proto2') proto.label = LABEL_REQUIRED;
      else proto.label = LABEL_OPTIONAL;
    }
    if (field.extend !== undefined) {
      const extended = field.extensionField
        ? field.extensionField.parent
        : field.parent.lookup(field.extend);
      proto.extendee = extended.fullName;
      this.use(extended);
    }
    if (field.partOf) {
      proto.oneofIndex = oneofs.indexOf(field.partOf);
      if (field.options?.proto3_optional) proto.proto3Optional = true;
    }
    const attributes = field.options || {};
    if (attributes.default !== undefined) proto.defaultValue = String(attributes.default);
    proto.jsonName = attributes.json_name ?? jsonName(field.name);
    const options = this.options(field, descriptor.FieldOptions) || {};
    if (attributes.packed !== undefined && field.repeated) options.packed = attributes.packed;
    if (Object.keys(options).length) proto.options = options;
    return proto;
  }

  enumeration(enumeration, path) {
    this.note(path, enumeration.comment);
    const proto = {
      name: enumeration.name,
      value: Object.entries(enumeration.values).map(([name, number], index) => {
        this.note([...path, 2, index], enumeration.comments?.[name]);
        const value = { name, number };
        const options = enumeration.valuesOptions?.[name];
        if (options) {
          value.options = this.standard(
            Object.entries(options).map(([key, option]) => ({ [key]: option })),
            descriptor.EnumValueOptions,
          );
        }
        return value;
      }),
      reservedRange: [],
      reservedName: [],
      options: this.options(enumeration, descriptor.EnumOptions),
    };
    this.reserved(enumeration, proto, 0);
    return proto;
  }

  service(service, path) {
    this.note(path, service.comment);
    return {
      name: service.name,
      method: service.methodsArray.map((method, index) => {
        this.note([...path, 2, index], method.comment);
        method.resolve();
        this.use(method.resolvedRequestType);
        this.use(method.resolvedResponseType);
        return {
          name: method.name,
          inputType: method.resolvedRequestType.fullName,
          outputType: method.resolvedResponseType.fullName,
          clientStreaming: method.requestStream ? true : undefined,
          serverStreaming: method.responseStream ? true : undefined,
          options: this.options(method, descriptor.MethodOptions),
        };
      }),
      options: this.options(service, descriptor.ServiceOptions),
    };
  }

  /** The options `object` was declared with, as an options message of `optionsType`. */
  options(object, optionsType) {
    const entries = (object.parsedOptions || []).filter(
      (entry) => !FIELD_ATTRIBUTES.has(Object.keys(entry)[0]),
    );
    const standard = entries.filter((entry) => !Object.keys(entry)[0].startsWith('('));
    const custom = entries.filter((entry) => Object.keys(entry)[0].startsWith('('));
    const options = this.standard(standard, optionsType) || {};
    const extensions = new Map();
    for (const entry of custom) {
      const [key, value] = Object.entries(entry)[0];
      const close = key.indexOf(')');
      const extension = lookupExtension(object, key.slice(1, close));
      const rest = key.slice(close + 2);
      const nested = rest ? nest(rest.split('.'), value) : value;
      const found = extensions.get(extension) || [];
      found.push(nested);
      extensions.set(extension, found);
    }
    for (const [extension, values] of extensions) {
      this.use(extension);
      const fieldName = extension.fullName;
      declareExtension(optionsType, extension);
      const encoded = values.map((value) => encodeOption(extension, value));
      options[fieldName] = extension.repeated ? encoded : encoded.reduce(mergeEncoded);
    }
    return Object.keys(options).length ? options : undefined;
  }

  standard(entries, optionsType) {
    const options = {};
    for (const entry of entries) {
      const [key, value] = Object.entries(entry)[0];
      const [first, ...rest] = key.split('.');
      const name = protobuf.util.camelCase(first);
      const field = optionsType.fields[name];
      if (!field) continue;
      const converted = camelKeys(rest.length ? nest(rest, value) : value);
      if (field.repeated) {
        options[name] = [...(options[name] || []), ...[].concat(converted)];
      } else if (isObject(converted) && isObject(options[name])) {
        options[name] = { ...options[name], ...converted };
      } else {
        options[name] = converted;
      }
    }
    return Object.keys(options).length ? options : undefined;
  }
}

let bundledByName = null;

// protobufjs loads the well-known files it bundles (@grpc/proto-loader adds
// descriptor.proto to them) from JSON, without a file name, when no include directory
// has them: the file of each top-level name, from the bundle.
function bundledFiles() {
  if (bundledByName) return bundledByName;
  bundledByName = new Map();
  const walk = (file, nested, prefix) => {
    for (const [name, definition] of Object.entries(nested || {})) {
      const fullName = `${prefix}.${name}`;
      if (definition.fields || definition.values || definition.methods) {
        bundledByName.set(fullName, file);
      } else {
        walk(file, definition.nested, fullName);
      }
    }
  };
  for (const [file, json] of Object.entries(protobuf.common)) {
    if (file.endsWith('.proto') && json && typeof json === 'object') walk(file, json.nested, '');
  }
  return bundledByName;
}

function entryName(fieldName) {
  const camel = fieldName.replace(/_(\w)/g, (_, letter) => letter.toUpperCase());
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
}

// The JSON name protoc gives a field: underscores dropped, the letter after each one
// capitalized.
function jsonName(name) {
  return name.replace(/_+(.?)/g, (_, letter) => letter.toUpperCase());
}

function lookupExtension(object, name) {
  const scope = object.parent || object;
  const found = name.startsWith('.') ? scope.root.lookup(name) : scope.lookup(name);
  if (!(found instanceof Field) || found.extend === undefined) {
    throw new Error(`${object.fullName} uses option (${name}), which is not an extension`);
  }
  found.resolve();
  return found;
}

// The options message field that carries `extension`: its name is the extension's full
// name (as protobufjs names extension fields), its type the extension's wire type.
function declareExtension(optionsType, extension) {
  const name = extension.fullName;
  if (optionsType.fields[name]) return;
  let type = extension.type;
  if (extension.resolvedType instanceof Type) type = 'bytes';
  else if (extension.resolvedType instanceof Enum) type = 'int32';
  optionsType.add(
    new Field(name, extension.id, type, extension.repeated ? 'repeated' : 'optional'),
  );
  // Adding a field drops the cached encoder and decoder but not the cached fromObject
  // and toObject (which @grpc/proto-loader may have made already): make them all anew.
  optionsType.setup();
}

function encodeOption(extension, value) {
  const resolved = extension.resolvedType;
  if (resolved instanceof Type) {
    return resolved.encode(resolved.fromObject(normalize(value, resolved))).finish();
  }
  if (resolved instanceof Enum) return typeof value === 'string' ? resolved.values[value] : value;
  return value;
}

// Two parts of one message-typed option (`(a).b = 1; (a).c = 2`) concatenate: on the wire
// that is a merge.
function mergeEncoded(left, right) {
  if (left instanceof Uint8Array && right instanceof Uint8Array) {
    return Buffer.concat([left, right]);
  }
  return right;
}

// Wraps single values of repeated fields in arrays, as fromObject wants them.
function normalize(value, type) {
  if (!isObject(value)) return value;
  const result = {};
  for (const [key, item] of Object.entries(value)) {
    const field = type.fields[key];
    if (!field) {
      result[key] = item;
      continue;
    }
    field.resolve();
    const items = field.repeated && !Array.isArray(item) ? [item] : item;
    const nested = field.resolvedType instanceof Type ? field.resolvedType : null;
    if (nested) {
      result[key] = Array.isArray(items)
        ? items.map((one) => normalize(one, nested))
        : normalize(items, nested);
    } else {
      result[key] = items;
    }
  }
  return result;
}

function nest(path, value) {
  return path.reduceRight((inner, key) => ({ [key]: inner }), value);
}

function camelKeys(value) {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [protobuf.util.camelCase(key), camelKeys(item)]),
  );
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !(value instanceof Uint8Array);
}

module.exports = { loadDescriptors, reflectionDefinition };
