// Errors as every plugmesh plugin sends them: a google.rpc.Status with one
// google.rpc.ErrorInfo (reason, domain "<service>.plugmesh", metadata) in the
// "grpc-status-details-bin" trailer, so the gateway renders the details over HTTP and
// gRPC clients read them as they read a Python plugin's.
'use strict';

const grpc = require('@grpc/grpc-js');
const { loadDescriptors } = require('./descriptors');

const DETAILS_KEY = 'grpc-status-details-bin';
const ERROR_INFO_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

/** Builds grpc-js errors for one service. */
class StatusErrors {
  /**
   * @param {string[]} includeDirs where google/rpc/*.proto and google/protobuf/*.proto are
   * @param {string} service the service's name; the domain is "<service>.plugmesh"
   */
  constructor(includeDirs, service) {
    this.domain = `${service}.plugmesh`;
    this.Status = loadDescriptors('google/rpc/status.proto', includeDirs).root.lookupType(
      'google.rpc.Status',
    );
    this.ErrorInfo = loadDescriptors('google/rpc/error_details.proto', includeDirs).root.lookupType(
      'google.rpc.ErrorInfo',
    );
  }

  /** An error for a grpc-js callback: `code`, `message`, and an ErrorInfo of `reason`. */
  error(code, message, reason, metadata = {}) {
    const info = this.ErrorInfo.encode(
      this.ErrorInfo.fromObject({ reason, domain: this.domain, metadata }),
    ).finish();
    const status = this.Status.encode(
      this.Status.fromObject({
        code,
        message,
        details: [{ type_url: ERROR_INFO_URL, value: info }],
      }),
    ).finish();
    const trailers = new grpc.Metadata();
    trailers.set(DETAILS_KEY, Buffer.from(status));
    return { code, details: message, metadata: trailers };
  }
}

module.exports = { StatusErrors };
