// plugmesh-client: a C++ client of the plugmesh gateway's gRPC ingress port, built on the
// stubs `make stubs` generates from protos/.
//
// Usage:
//   plugmesh-client create-user USER_ID EMAIL DISPLAY_NAME
//   plugmesh-client get-user USER_ID
//   plugmesh-client list-machine-users
//
// Environment: PLUGMESH_GATEWAY_GRPC ("host:port" of the ingress port) and PLUGMESH_TOKEN
// (a machine token, sent as "authorization: Bearer ..."; calls go without one when it is
// unset). A response is printed as proto3 JSON on stdout; a refused call prints
// {"code": <gRPC code>, "message": ...} on stderr and exits with 1.

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "plugmesh/machineusers/v1/machineusers.grpc.pb.h"
#include "plugmesh/users/v1/users.grpc.pb.h"

namespace {

namespace machineusers = plugmesh::machineusers::v1;
namespace users = plugmesh::users::v1;

constexpr auto kDeadline = std::chrono::seconds(10);
constexpr int kRefused = 1;
constexpr int kUsage = 2;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// A context with the call's deadline and, when there is a token, its bearer header.
void Prepare(grpc::ClientContext& context, const std::string& token) {
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  if (!token.empty()) {
    context.AddMetadata("authorization", "Bearer " + token);
  }
}

int PrintJson(const google::protobuf::Message& message, std::ostream& out) {
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json);
  if (!status.ok()) {
    std::cerr << "cannot print the response as JSON: " << status.ToString() << "\n";
    return kRefused;
  }
  out << json << "\n";
  return 0;
}

// The response as JSON on stdout, or the refusal's code and message as JSON on stderr.
int Report(const grpc::Status& status, const google::protobuf::Message& response) {
  if (status.ok()) {
    return PrintJson(response, std::cout);
  }
  google::protobuf::Struct refusal;
  auto& fields = *refusal.mutable_fields();
  fields["code"].set_number_value(status.error_code());
  fields["message"].set_string_value(status.error_message());
  PrintJson(refusal, std::cerr);
  return kRefused;
}

int Usage() {
  std::cerr << "usage: plugmesh-client create-user USER_ID EMAIL DISPLAY_NAME\n"
               "       plugmesh-client get-user USER_ID\n"
               "       plugmesh-client list-machine-users\n"
               "environment: PLUGMESH_GATEWAY_GRPC (host:port), PLUGMESH_TOKEN\n";
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = Env("PLUGMESH_GATEWAY_GRPC");
  const std::string token = Env("PLUGMESH_TOKEN");
  if (address.empty() || argc < 2) {
    return Usage();
  }
  const std::string command = argv[1];
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  Prepare(context, token);

  if (command == "create-user" && argc == 5) {
    users::CreateUserRequest request;
    users::User* user = request.mutable_user();
    user->set_user_id(argv[2]);
    user->set_email(argv[3]);
    user->set_display_name(argv[4]);
    user->set_role(users::ROLE_USER);
    users::CreateUserResponse response;
    auto status = users::UserService::NewStub(channel)->CreateUser(&context, request, &response);
    return Report(status, response);
  }
  if (command == "get-user" && argc == 3) {
    users::GetUserRequest request;
    request.set_user_id(argv[2]);
    users::GetUserResponse response;
    auto status = users::UserService::NewStub(channel)->GetUser(&context, request, &response);
    return Report(status, response);
  }
  if (command == "list-machine-users" && argc == 2) {
    machineusers::ListMachineUsersRequest request;
    machineusers::ListMachineUsersResponse response;
    auto status = machineusers::MachineUserService::NewStub(channel)->ListMachineUsers(
        &context, request, &response);
    return Report(status, response);
  }
  return Usage();
}
