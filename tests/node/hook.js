// The Node test plugin's hook (plugmesh.mcp.v1.ToolCallHookService), served with --hook and
// declared in protos/test/greeter/v1/greeter_hook.proto: PreToolCall signs the text of a
// call ("<text> [node]"), PostToolCall redacts the word "classified" from results, and
// FilterTools hides every "add" tool. Messages come from @grpc/proto-loader (camelCase
// fields, oneofs named by "verdict"); google.protobuf.Struct is converted by hand.
'use strict';

const HOOK_PROTO = 'plugmesh/mcp/v1/hooks.proto';
const DECLARATION_PROTO = 'test/greeter/v1/greeter_hook.proto';
const HOOK_SERVICE = 'plugmesh.mcp.v1.ToolCallHookService';

/** A google.protobuf.Value as proto-loader gives it, as plain JSON. */
function fromValue(value) {
  switch (value.kind) {
    case 'nullValue':
      return null;
    case 'numberValue':
      return value.numberValue;
    case 'stringValue':
      return value.stringValue;
    case 'boolValue':
      return value.boolValue;
    case 'structValue':
      return fromStruct(value.structValue);
    case 'listValue':
      return (value.listValue.values || []).map(fromValue);
    default:
      return null;
  }
}

function fromStruct(struct) {
  const result = {};
  for (const [key, value] of Object.entries((struct && struct.fields) || {})) {
    result[key] = fromValue(value);
  }
  return result;
}

/** Plain JSON as a google.protobuf.Value. */
function toValue(value) {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  return { structValue: toStruct(value) };
}

function toStruct(object) {
  const fields = {};
  for (const [key, value] of Object.entries(object)) fields[key] = toValue(value);
  return { fields };
}

/** The handlers of ToolCallHookService. */
function hookHandlers(name) {
  return {
    preToolCall(call, callback) {
      const args = fromStruct(call.request.call.arguments);
      const attributes = { [name]: 'pre' };
      if (typeof args.text !== 'string') {
        callback(null, { allow: {}, attributes });
        return;
      }
      args.text = `${args.text} [node]`;
      callback(null, { modify: { arguments: toStruct(args) }, attributes });
    },
    postToolCall(call, callback) {
      callback(null, { redact: { values: ['classified'] }, attributes: { [name]: 'post' } });
    },
    filterTools(call, callback) {
      const hidden = (call.request.tools || [])
        .filter((listed) => listed.tool.name === 'add')
        .map((listed) => `${listed.server}/${listed.tool.name}`);
      callback(null, { hidden });
    },
  };
}

module.exports = { DECLARATION_PROTO, HOOK_PROTO, HOOK_SERVICE, hookHandlers };
